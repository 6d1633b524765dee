"""One LMDB environment per database per process, shared by every reader.

py-lmdb 3 refuses to open an environment that is already open in the same process (notes B11), and LMDB handles
must not cross a fork: a forked DataLoader worker drops the environments it inherited and opens its own.
"""
import os
from os import path as osp

_ENVIRONMENTS = {}  # (realpath, readonly, lock, readahead) -> lmdb.Environment of this process


def _close_inherited_environments():
    for env in _ENVIRONMENTS.values():
        env.close()
    _ENVIRONMENTS.clear()


os.register_at_fork(after_in_child=_close_inherited_environments)


def shared_lmdb_env(path, readonly=True, lock=False, readahead=False, **kwargs):
    import lmdb
    key = (osp.realpath(path), readonly, lock, readahead)
    if key not in _ENVIRONMENTS:
        _ENVIRONMENTS[key] = lmdb.open(path, readonly=readonly, lock=lock, readahead=readahead, **kwargs)
    return _ENVIRONMENTS[key]
