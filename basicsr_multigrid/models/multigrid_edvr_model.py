from basicsr.models.edvr_model import EDVRModel
from basicsr.utils.registry import MODEL_REGISTRY

from basicsr_multigrid.models.checkpoint_mixin import AtomicCheckpointMixin
from basicsr_multigrid.models.ema_validation import EmaValidationMixin


@MODEL_REGISTRY.register()
class MultigridEDVRModel(AtomicCheckpointMixin, EmaValidationMixin, EDVRModel):
    """BasicSR's EDVRModel (sliding window, centre frame out) with exactly resumable checkpoints. On a multigrid
    schedule it takes spatial stages only, since TSA fusion is built for one clip length."""
