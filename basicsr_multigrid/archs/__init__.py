"""Auto-imports every `*_arch.py` here so its registry decorators run."""
from basicsr_multigrid.utils.registration import import_submodules

import_submodules(__name__, __file__, '_arch.py')
