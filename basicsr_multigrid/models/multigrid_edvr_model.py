from basicsr.models.edvr_model import EDVRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from basicsr_multigrid.models.checkpoint_mixin import AtomicCheckpointMixin
from basicsr_multigrid.models.ema_validation import EmaValidationMixin
from basicsr_multigrid.models.generator_step import GeneratorStepMixin


@MODEL_REGISTRY.register()
class MultigridEDVRModel(AtomicCheckpointMixin, EmaValidationMixin, GeneratorStepMixin, EDVRModel):
    """BasicSR's EDVRModel (sliding window, centre frame out) with exactly resumable checkpoints and one training
    step with `train.precision`. On a multigrid schedule it takes spatial stages only, since TSA fusion is built
    for one clip length."""

    def prepare_step(self, current_iter):
        """With `train.tsa_iter`, only the TSA fusion module trains before that iteration (as EDVRModel), and
        wherever a run starts (EDVRModel freezes at iteration 1 only, so a run resumed before tsa_iter trained
        every parameter)."""
        if not self.train_tsa_iter:
            return
        fusion_only = current_iter < self.train_tsa_iter
        if current_iter in (1, self.train_tsa_iter):
            get_root_logger().info(f'Iteration {current_iter}: training '
                                   + (f'the TSA module only, up to iteration {self.train_tsa_iter}' if fusion_only
                                      else 'all parameters'))
        for name, param in self.net_g.named_parameters():
            param.requires_grad_(not fusion_only or 'fusion' in name)
