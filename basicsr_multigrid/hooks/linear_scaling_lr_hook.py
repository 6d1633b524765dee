from mmengine.hooks import Hook

from basicsr_multigrid.hooks.registry import HOOKS
from basicsr_multigrid.utils.errors import OptionError


@HOOKS.register_module()
class LinearScalingLRHook(Hook):
    """Linear scaling rule (Goyal et al. 2017): LR x (total batch / reference batch).

    The total batch is `batch_size_per_gpu x world size` of the option file, so moving a recipe from 8
    GPUs to 1, or to a 4x larger minibatch, keeps the per-sample step size. Per-phase batch changes of the
    multigrid modes with `batch_scaling` are already in the schedule's `lr_factor` (MultigridLRHook).
    """
    priority = 'NORMAL'

    def __init__(self, reference_batch=32):
        if int(reference_batch) < 1:
            raise OptionError(f'train.hooks.LinearScalingLRHook.reference_batch: must be >= 1, got {reference_batch}')
        self.reference_batch = int(reference_batch)

    def lr_factor(self, runner):
        return runner.base_batch_size * runner.world_size / self.reference_batch
