"""basicsr-multigrid: multigrid VSR training and knowledge distillation for BasicSR.

Importing the package first repairs basicsr 1.4.2 on today's stack (``compat``), then imports the sub-packages so
that every arch, dataset, loss, model, optimizer and hook is registered, and extends two basicsr behaviours this
package's option files rely on: optimizers by name (``optim``) and flow networks at small patches
(``archs.small_input_flow``).
"""
from basicsr_multigrid import compat

compat.apply()

from basicsr_multigrid import archs, data, hooks, losses, models, optim  # noqa: E402,F401  (registration)
from basicsr_multigrid.archs.small_input_flow import enable_small_inputs  # noqa: E402
from basicsr_multigrid.version import __version__  # noqa: E402,F401

optim.use_optimizer_lookup()
enable_small_inputs()
