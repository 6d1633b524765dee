"""The frozen teacher of knowledge distillation: built from `network_t`, loaded from `path.pretrain_network_t`.

Kept apart from the model so that preflight can check the checkpoint against the arch before any experiment
folder exists, with the same code and the same one-line errors as the model.
"""
import contextlib

from basicsr.utils.registry import ARCH_REGISTRY
from torch.nn.modules.batchnorm import _BatchNorm

from basicsr_multigrid.utils.errors import OptionError
from basicsr_multigrid.utils.weights import load_weights

DISTILLATION_KEYS = ('distill_opt', 'feature_distill_opt')
DISTILL_GATES = ('none', 'teacher_better')
TEACHER_BATCHNORM = ('running', 'batch')


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
    load_weights(network, path, opt['path'].get('param_key_t', 'params'),
                 what=f"network_t ({opt['network_t'].get('type')})", option_key='path.pretrain_network_t')
    network.requires_grad_(False)
    return network.eval().to(device)


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


def teacher_batchnorm(opt):
    """`train.teacher_batchnorm`: which statistics the teacher's BatchNorm layers normalise with (`running`: the
    trained running statistics, eval mode; `batch`: the statistics of the batch the teacher is given)."""
    mode = opt.get('train', {}).get('teacher_batchnorm', 'running')
    if mode not in TEACHER_BATCHNORM:
        raise OptionError(f'train.teacher_batchnorm: {mode!r} is not one of {", ".join(TEACHER_BATCHNORM)}')
    return mode


@contextlib.contextmanager
def batch_statistics(network):
    """Inside, `network`'s BatchNorm layers normalise with the statistics of each batch, as in training mode,
    without updating their running statistics (or their batch count); afterwards they are as they were."""
    layers = [(m, m.training, m.track_running_stats) for m in network.modules() if isinstance(m, _BatchNorm)]
    try:
        for layer, _, _ in layers:
            layer.training, layer.track_running_stats = True, False
        yield network
    finally:
        for layer, training, tracking in layers:
            layer.training, layer.track_running_stats = training, tracking


def check_teacher(opt):
    """Preflight: raise OptionError if the teacher cannot be built and loaded as configured."""
    require_teacher_for_distillation(opt)
    teacher_batchnorm(opt)
    load_teacher(opt)
