from basicsr.models.sr_model import SRModel
from basicsr.utils.registry import MODEL_REGISTRY

from basicsr_multigrid.models.checkpoint_mixin import AtomicCheckpointMixin
from basicsr_multigrid.models.ema_validation import EmaValidationMixin
from basicsr_multigrid.models.generator_step import GeneratorStepMixin
from basicsr_multigrid.models.optimizer_setup import setup_generator_optimizer


@MODEL_REGISTRY.register()
class FrameInterpolationModel(AtomicCheckpointMixin, EmaValidationMixin, GeneratorStepMixin, SRModel):
    """Frame interpolation (ST-MFNet, ST-MFNet Mini): `lq` holds the input frames (B, 4, C, H, W), `gt` the
    middle frame; trained on `train.pixel_opt` (and `perceptual_opt`) as BasicSR's SRModel, validated per frame.

    With `optim_g.type: OBProxSG, sparsity: channel` the weights are grouped by output channel (group-sparsity
    training for pruning) and each logged iteration shows the optimizer's `density`.
    """

    def setup_optimizers(self):
        setup_generator_optimizer(self)
