"""basicsr-multigrid: multigrid VSR training and knowledge distillation for BasicSR.

Importing the package first repairs basicsr 1.4.2 on today's stack (see ``compat``), then imports the
sub-packages so that every arch, dataset, loss, model and hook is registered.
"""
from basicsr_multigrid import compat

compat.apply()

from basicsr_multigrid import archs, data, hooks, losses, models, optim  # noqa: E402,F401  (registration)
from basicsr_multigrid.version import __version__  # noqa: E402,F401
