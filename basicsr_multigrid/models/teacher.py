"""The frozen teacher of knowledge distillation: built from `network_t`, loaded from `path.pretrain_network_t`.

Kept apart from the model so that preflight can check the checkpoint against the arch before any experiment
folder exists, with the same code and the same one-line errors as the model.
"""
import torch
from basicsr.utils.registry import ARCH_REGISTRY

from basicsr_multigrid.utils.checkpoint import load_checkpoint
from basicsr_multigrid.utils.errors import OptionError

SHOWN_KEYS = 3
DISTILLATION_KEYS = ('distill_opt', 'feature_distill_opt')
DISTILL_GATES = ('none', 'teacher_better')


def build_teacher_network(opt):
    """The teacher arch from `network_t`, or None when the options have no teacher."""
    network_opt = opt.get('network_t')
    if network_opt is None:
        return None
    network_opt = dict(network_opt)
    arch = network_opt.pop('type', None)
    if arch not in ARCH_REGISTRY:
        raise OptionError(f'network_t.type: no arch named {arch!r} is registered')
    try:
        return ARCH_REGISTRY.get(arch)(**network_opt)
    except TypeError as error:
        raise OptionError(f'network_t: {arch}: {error}') from None


def load_teacher(opt, device='cpu'):
    """The teacher with its checkpoint loaded, frozen (no gradients) and in eval mode; None without network_t."""
    network = build_teacher_network(opt)
    if network is None:
        return None
    path = opt.get('path', {}).get('pretrain_network_t')
    if not path:
        raise OptionError('path.pretrain_network_t: required with network_t (the trained teacher checkpoint)')
    state = read_state_dict(path, opt['path'].get('param_key_t', 'params'))
    _check_keys(network, state, path, opt['network_t'].get('type'))
    network.load_state_dict(state)
    network.requires_grad_(False)
    return network.eval().to(device)


def read_state_dict(path, param_key='params', option_key='path.pretrain_network_t'):
    """The state dict under `param_key` of a checkpoint (or the checkpoint itself if it is one), `module.`
    prefixes removed; OptionError naming `option_key` if the file is missing, unreadable or holds none."""
    try:
        checkpoint = load_checkpoint(path)
    except FileNotFoundError:
        raise OptionError(f'{option_key}: file not found: {path}') from None
    except Exception as error:  # noqa: BLE001  (torch reports corrupt files with many exception types)
        raise OptionError(f'{option_key}: cannot read {path}: {str(error).splitlines()[0]}') from None
    if isinstance(checkpoint, dict) and param_key in checkpoint:
        checkpoint = checkpoint[param_key]
    is_state_dict = isinstance(checkpoint, dict) and all(isinstance(v, torch.Tensor) for v in checkpoint.values())
    if not is_state_dict:
        raise OptionError(f'{option_key}: {path} has no {param_key!r} entry holding a state dict')
    return {name.removeprefix('module.'): tensor for name, tensor in checkpoint.items()}


def _check_keys(network, state, path, arch):
    expected = network.state_dict()
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    problems = []
    if missing:
        problems.append(f'missing keys {_first(missing)}')
    if unexpected:
        problems.append(f'unexpected keys {_first(unexpected)}')
    reshaped = [name for name in expected if name in state and tuple(state[name].shape) != tuple(expected[name].shape)]
    if reshaped:
        name = reshaped[0]
        problems.append(f'{len(reshaped)} shape mismatches, first {name}: checkpoint {tuple(state[name].shape)} vs '
                        f'arch {tuple(expected[name].shape)}')
    if problems:
        raise OptionError(f'path.pretrain_network_t: {path} does not match network_t ({arch}): ' + '; '.join(problems))


def _first(names):
    shown = ', '.join(names[:SHOWN_KEYS])
    return shown + (f' (+{len(names) - SHOWN_KEYS} more)' if len(names) > SHOWN_KEYS else '')


def require_teacher_for_distillation(opt):
    """Distillation losses without a teacher are a configuration error, found before anything runs."""
    gate = distill_gate(opt)
    if opt.get('network_t') is None:
        for key in DISTILLATION_KEYS:
            if opt.get('train', {}).get(key):
                raise OptionError(f'train.{key}: distilling needs a teacher; add network_t and path.pretrain_network_t')
        if gate != 'none':
            raise OptionError(f'train.distill_gate: {gate} needs a teacher; add network_t and path.pretrain_network_t')


def distill_gate(opt):
    """`train.distill_gate`: which items the output distillation applies to (`none`: all of them)."""
    gate = opt.get('train', {}).get('distill_gate', 'none')
    if gate not in DISTILL_GATES:
        raise OptionError(f'train.distill_gate: {gate!r} is not one of {", ".join(DISTILL_GATES)}')
    return gate


def check_teacher(opt):
    """Preflight: raise OptionError if the teacher cannot be built and loaded as configured."""
    require_teacher_for_distillation(opt)
    load_teacher(opt)
