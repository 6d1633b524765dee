"""Checkpoint contents that load with torch's `weights_only=True` (tensors and Python primitives, RNG states
included), reading them back, and choosing the newest complete checkpoint of an experiment to resume from.
Files are written with `utils.atomic_io.atomic_torch_save`, so a kill never leaves half a checkpoint."""
import os
import random
import warnings
from collections import Counter
from os import path as osp

import numpy as np
import torch


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


def latest_training_state(experiment_root):
    """Path of the newest ``<iter>.state`` under ``experiment_root/training_states`` whose state and model files
    are complete, or None. Skipped files are named in a warning."""
    state_dir = osp.join(experiment_root, 'training_states')
    if not osp.isdir(state_dir):
        return None
    iters = sorted((int(name[:-len('.state')]) for name in os.listdir(state_dir)
                    if name.endswith('.state') and name[:-len('.state')].isdigit()), reverse=True)
    for it in iters:
        files = [osp.join(state_dir, f'{it}.state')] + _model_files(experiment_root, it)
        bad = [(file, reason) for file, reason in ((file, readable_checkpoint(file)) for file in files) if reason]
        if not bad:
            return files[0]
        warnings.warn(f'auto_resume: skipping iteration {it}: {bad[0][0]} is unusable ({bad[0][1]})', stacklevel=2)
    return None


def _model_files(experiment_root, it):
    models = osp.join(experiment_root, 'models')
    names = os.listdir(models) if osp.isdir(models) else []
    files = [osp.join(models, n) for n in sorted(names) if n.endswith(f'_{it}.pth')]
    return files or [osp.join(models, f'net_g_{it}.pth')]
