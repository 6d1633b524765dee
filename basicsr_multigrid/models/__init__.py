"""Auto-imports every `*_model.py` here so its registry decorators run."""
from basicsr_multigrid.utils.registration import import_submodules

import_submodules(__name__, __file__, '_model.py')
