"""Network weights from the checkpoint layouts in use, loaded strictly with one-line errors.

Layouts: BasicSR's `{'params': ..., 'params_ema': ...}`, ST-MFNet's official `{'state_dict': ...}`, a plain state
dict, any of them with DataParallel / DDP `module.` prefixes. `param_key: auto` takes `params_ema` (the averaged
weights a run ships), else `params`, else `state_dict`, else the file itself when it is a state dict, and says
which. A named key that is missing falls back from `params_ema` to `params` as BasicSR does; otherwise it is an
error that lists the keys the file has.
"""
import torch

from basicsr_multigrid.utils.checkpoint import load_checkpoint
from basicsr_multigrid.utils.errors import OptionError

AUTO = 'auto'
AUTO_ORDER = ('params_ema', 'params', 'state_dict')
WHOLE_FILE = 'the whole file'
SHOWN_KEYS = 3


def read_weights(path, param_key=AUTO, option_key='--weights'):
    """(state dict, where it came from: a key of the file or WHOLE_FILE), `module.` prefixes removed."""
    try:
        checkpoint = load_checkpoint(path)
    except FileNotFoundError:
        raise OptionError(f'{option_key}: file not found: {path}') from None
    except Exception as error:  # noqa: BLE001  (torch reports corrupt files with many exception types)
        raise OptionError(f'{option_key}: cannot read {path}: {str(error).splitlines()[0]}') from None
    if not isinstance(checkpoint, dict):
        raise OptionError(f'{option_key}: {path} holds a {type(checkpoint).__name__}, not a state dict')
    source = _choose_key(checkpoint, param_key, path, option_key)
    state = checkpoint if source == WHOLE_FILE else checkpoint[source]
    if not _is_state_dict(state):
        raise OptionError(f'{option_key}: {path}: {source!r} does not hold a state dict (name -> tensor)')
    return {name.removeprefix('module.'): tensor for name, tensor in state.items()}, source


def _is_state_dict(value):
    return isinstance(value, dict) and bool(value) and all(isinstance(v, torch.Tensor) for v in value.values())


def _choose_key(checkpoint, param_key, path, option_key):
    if param_key in (None, AUTO):
        for key in AUTO_ORDER:
            if key in checkpoint:
                return key
        if _is_state_dict(checkpoint):
            return WHOLE_FILE
        raise OptionError(f'{option_key}: {path} has none of {", ".join(AUTO_ORDER)} and is not a state dict '
                          f'(its keys: {_first(list(checkpoint))})')
    if param_key in checkpoint:
        return param_key
    if param_key == 'params_ema' and 'params' in checkpoint:
        return 'params'
    raise OptionError(f'{option_key}: {path} has no {param_key!r} entry (its keys: {_first(list(checkpoint))}); '
                      'param_key auto picks what is there')


def check_weights_match(network, state, path, what, option_key='--weights'):
    """OptionError naming the first missing, unexpected and reshaped keys when `state` does not fit `network`."""
    expected = network.state_dict()
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    reshaped = [name for name in expected if name in state and tuple(state[name].shape) != tuple(expected[name].shape)]
    problems = []
    if missing:
        problems.append(f'missing keys {_first(missing)}')
    if unexpected:
        problems.append(f'unexpected keys {_first(unexpected)}')
    if reshaped:
        name = reshaped[0]
        problems.append(f'{len(reshaped)} shape mismatches, first {name}: checkpoint {tuple(state[name].shape)} vs '
                        f'network {tuple(expected[name].shape)}')
    if problems:
        raise OptionError(f'{option_key}: {path} does not match {what}: ' + '; '.join(problems))


def load_weights(network, path, param_key=AUTO, what='the network', option_key='--weights'):
    """Load `path` into `network` strictly; returns where the weights came from (for the log)."""
    state, source = read_weights(path, param_key, option_key)
    check_weights_match(network, state, path, what, option_key)
    network.load_state_dict(state)
    return source


def _first(names):
    shown = ', '.join(str(name) for name in names[:SHOWN_KEYS])
    return shown + (f' (+{len(names) - SHOWN_KEYS} more)' if len(names) > SHOWN_KEYS else '')
