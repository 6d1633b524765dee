"""Files that are either the old version or the complete new one, never half of one: written to a temporary
file in the same folder, flushed and renamed over the target."""
import os
from os import path as osp

import torch

SAVE_ATTEMPTS = 3


def write_text_atomic(file, lines):
    temporary = f'{file}.tmp{os.getpid()}'
    with open(temporary, 'w') as f:
        f.writelines(lines)
    os.replace(temporary, file)


def atomic_torch_save(obj, path):
    """torch.save through a synced temporary file; a failed write (full disk) is retried, then re-raised."""
    temporary = f'{path}.tmp{os.getpid()}'
    for attempt in range(1, SAVE_ATTEMPTS + 1):
        try:
            with open(temporary, 'wb') as f:
                torch.save(obj, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, path)
            return
        except OSError:
            if osp.exists(temporary):
                os.remove(temporary)
            if attempt == SAVE_ATTEMPTS:
                raise
