from basicsr.utils import get_root_logger
from mmengine.hooks import Hook

from basicsr_multigrid.hooks.registry import HOOKS


@HOOKS.register_module()
class MultigridLRHook(Hook):
    """Applies the schedule's per-phase LR factor and announces each phase as training enters it.

    Always installed for multigrid runs: the factor holds the `stage_lr_factors` of the options and, in
    `batch_scaling: constant_compute` mode, the linear-scaling factor of the phase's batch size.
    """
    priority = 'NORMAL'

    def __init__(self):
        self.current_phase = None

    def before_train_iter(self, runner, batch_idx=None, data_batch=None):
        phase = runner.phase
        if phase.index != self.current_phase:
            self.current_phase = phase.index
            get_root_logger().info(
                f'Multigrid phase {phase.index + 1}/{len(runner.schedule.phases)} (stage {phase.stage}) from '
                f'iteration {phase.start_iter + 1}: lq_size {phase.lq_size}, gt_size {phase.gt_size}, num_frame '
                f'{phase.num_frame}, batch {phase.batch_size_per_gpu}/GPU, lr factor {phase.lr_factor:g}')
        if phase.lr_factor != 1:
            runner.scale_lr(phase.lr_factor)
