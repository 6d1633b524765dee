"""Checkpoint files that survive a kill at any moment and load with torch's `weights_only=True`.

Writes go to a temporary file in the same folder, are flushed to disk and renamed over the target, so a reader
sees the old file or the new one, never half of one. Saved states hold only tensors and Python primitives.
"""
import os
import random
import warnings
from collections import Counter
from os import path as osp

import numpy as np
import torch

SAVE_ATTEMPTS = 3


def atomic_torch_save(obj, path):
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


def to_primitives(value):
    """Counters (MultiStepRestartLR milestones) become plain dicts; everything else is kept as it is."""
    if isinstance(value, Counter):
        return {'__counter__': {k: int(v) for k, v in value.items()}}
    if isinstance(value, dict):
        return {k: to_primitives(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_primitives(v) for v in value)
    return value


def from_primitives(value):
    if isinstance(value, dict):
        if set(value) == {'__counter__'}:
            return Counter(value['__counter__'])
        return {k: from_primitives(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(from_primitives(v) for v in value)
    return value


def rng_states():
    """Python, numpy and torch (CPU, and CUDA when used) random states as tensors and primitives."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states = {'python': [version, list(internal), gauss], 'torch': torch.get_rng_state(),
              'numpy': [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states):
    version, internal, gauss = states['python']
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = states['numpy']
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states['torch'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])


def load_checkpoint(path, map_location='cpu'):
    """torch.load with weights_only=True; a state from stock BasicSR (pickled Counters) falls back, with a warning."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001  (torch raises UnpicklingError or RuntimeError variants)
        if 'Weights only load failed' not in str(error):
            raise
        warnings.warn(f'{path}: not loadable with weights_only=True (written by stock BasicSR?); loading it fully')
        return torch.load(path, map_location=map_location, weights_only=False)


def readable_checkpoint(path):
    """None if `path` opens as a complete torch checkpoint, else the reason (truncated, corrupt, missing)."""
    if not osp.isfile(path):
        return 'missing'
    try:
        torch.load(path, map_location='cpu', weights_only=True, mmap=True)
    except Exception as error:  # noqa: BLE001  (any failure means the file cannot be resumed from)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return reason if 'Weights only load failed' not in reason else None
    return None
