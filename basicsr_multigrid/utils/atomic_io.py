"""Files that are either the old version or the complete new one, never half of one: written to a temporary
file in the same folder, flushed and renamed over the target. A write that fails (full disk, quota, I/O error)
removes the temporary file and raises DiskWriteError: one line with the file, the reason and the free space."""
import os
import shutil
from contextlib import contextmanager
from os import path as osp

import torch

from basicsr_multigrid.utils.errors import DiskWriteError


def write_text_atomic(file, lines):
    with _replacing(file) as temporary:
        with open(temporary, 'w') as f:
            f.writelines(lines)


def atomic_torch_save(obj, path):
    """torch.save through a synced temporary file."""
    with _replacing(path) as temporary:
        with open(temporary, 'wb') as f:
            writer = _FailedWriteKeeper(f)
            try:
                torch.save(obj, writer)
            except RuntimeError:
                if writer.error is None:
                    raise
                raise writer.error from None
            f.flush()
            os.fsync(f.fileno())


class _FailedWriteKeeper:
    """A file for torch.save that keeps the OSError of a failed write: torch's zip writer reports it only as a
    RuntimeError ('unexpected pos ...') that says nothing about the disk."""

    def __init__(self, file):
        self.file = file
        self.error = None

    def write(self, data):
        try:
            return self.file.write(data)
        except OSError as error:
            self.error = error
            raise

    def flush(self):
        self.file.flush()


@contextmanager
def _replacing(path):
    """Yields a temporary name next to `path`; on success it replaces `path`, on failure it is removed."""
    temporary = f'{path}.tmp{os.getpid()}'
    try:
        yield temporary
    except BaseException as error:
        if osp.exists(temporary):
            os.remove(temporary)
        if isinstance(error, OSError):
            raise DiskWriteError(f'{path}: not written ({error.strerror or error}); {free_space(path)}; the '
                                 'previous version of this file, if any, is intact') from error
        raise
    os.replace(temporary, path)


def free_space(path):
    """'<N> MiB free on <folder>' for the folder that holds `path`."""
    folder = osp.dirname(osp.abspath(path))
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return f'free space on {folder} unknown'
    return f'{free / 2**20:.1f} MiB free on {folder}'
