"""Optimizers that BasicSR option files can name in `train.optim_g.type` next to every torch.optim class
(compat B14 looks here first)."""
from basicsr.utils.registry import Registry

OPTIMIZER_REGISTRY = Registry('optimizer')

from basicsr_multigrid.optim import obproxsg  # noqa: E402,F401  (registration)
