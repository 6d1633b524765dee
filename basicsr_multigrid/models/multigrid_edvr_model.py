from basicsr.models.edvr_model import EDVRModel
from basicsr.utils.registry import MODEL_REGISTRY

from basicsr_multigrid.models.multigrid_mixin import MultigridTrainingMixin


@MODEL_REGISTRY.register()
class MultigridEDVRModel(MultigridTrainingMixin, EDVRModel):
    """BasicSR's EDVRModel (sliding window, centre frame out) trained on a multigrid schedule: spatial stages
    only, since TSA fusion is built for one clip length (see MultigridTrainingMixin)."""
