"""Optimizers by name for `train.optim_g.type`: this package's (OBProxSG) and every torch.optim class.

basicsr 1.4.2's `BaseModel.get_optimizer` knows only Adam (notes B14); `use_optimizer_lookup()` makes it look
names up here, so stock BasicSR models get them too. `optimizer_param_groups` gives OBProxSG in `channel` mode
its channel units (parameter groups whose tensors share one width's channels).
"""
import torch
from basicsr.utils.registry import Registry

from basicsr_multigrid.utils.errors import OptionError
from basicsr_multigrid.utils.patching import patch

OPTIMIZER_REGISTRY = Registry('optimizer')

from basicsr_multigrid.optim import obproxsg  # noqa: E402  (registration)


def optimizer_class(optim_type):
    if optim_type in OPTIMIZER_REGISTRY:
        return OPTIMIZER_REGISTRY.get(optim_type)
    optimizer_cls = getattr(torch.optim, optim_type, None)
    if not (isinstance(optimizer_cls, type) and issubclass(optimizer_cls, torch.optim.Optimizer)):
        raise OptionError(f'train.optim_g.type: unknown optimizer {optim_type!r}; use OBProxSG or a torch.optim '
                          'class name')
    return optimizer_cls


def build_optimizer(optim_type, params, lr, **kwargs):
    """The optimizer named `optim_type`; bad arguments are one line naming train.optim_g."""
    optimizer_cls = optimizer_class(optim_type)
    try:
        return optimizer_cls(params, lr, **kwargs)
    except (TypeError, ValueError) as error:
        raise OptionError(f'train.optim_g ({optim_type}): {error}') from None


def uses_channel_groups(optim_opt):
    """OBProxSG with `sparsity: channel` regularises per output channel: it needs `optimizer_param_groups`."""
    return optimizer_class(optim_opt['type']) is obproxsg.OBProxSG and optim_opt.get('sparsity') == 'channel'


def optimizer_param_groups(optim_opt, network):
    """Parameter groups of `network` for the optimizer of `optim_opt`: channel units for OBProxSG's `channel`
    sparsity, else every trainable parameter."""
    if uses_channel_groups(optim_opt):
        return obproxsg.channel_sparsity_param_groups(network)
    return [p for p in network.parameters() if p.requires_grad]


def use_optimizer_lookup():
    """Route basicsr's `BaseModel.get_optimizer` through `build_optimizer` (B14)."""
    from basicsr.models.base_model import BaseModel

    def get_optimizer(self, optim_type, params, lr, **kwargs):
        return build_optimizer(optim_type, params, lr, **kwargs)

    patch('B14_only_adam', BaseModel, 'get_optimizer', get_optimizer)
