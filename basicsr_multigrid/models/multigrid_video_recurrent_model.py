from basicsr.models.video_recurrent_model import VideoRecurrentModel
from basicsr.utils.registry import MODEL_REGISTRY

from basicsr_multigrid.models.multigrid_mixin import MultigridTrainingMixin


@MODEL_REGISTRY.register()
class MultigridVideoRecurrentModel(MultigridTrainingMixin, VideoRecurrentModel):
    """BasicSR's VideoRecurrentModel (BasicVSR, IconVSR, BasicVSR++) trained on a multigrid schedule
    (see MultigridTrainingMixin: schedule, LR hooks, shape logging, metrics and timing files)."""
