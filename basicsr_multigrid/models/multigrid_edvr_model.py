from basicsr.models.edvr_model import EDVRModel
from basicsr.utils.registry import MODEL_REGISTRY

from basicsr_multigrid.models.checkpoint_mixin import AtomicCheckpointMixin


@MODEL_REGISTRY.register()
class MultigridEDVRModel(AtomicCheckpointMixin, EDVRModel):
    """BasicSR's EDVRModel (sliding window, centre frame out) with exactly resumable checkpoints. On a multigrid
    schedule it takes spatial stages only, since TSA fusion is built for one clip length."""
