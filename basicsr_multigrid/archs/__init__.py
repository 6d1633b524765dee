"""Auto-imports every `*_arch.py` here so its registry decorators run, and makes basicsr's flow-warping networks
warp with a grid made on the device (`flow_warp`: no host sync per warp, outputs equal to basicsr's)."""
from basicsr_multigrid.archs.flow_warp import use_device_grid_flow_warp
from basicsr_multigrid.utils.registration import import_submodules

import_submodules(__name__, __file__, '_arch.py')
use_device_grid_flow_warp()
