from basicsr.utils import get_root_logger
from mmengine.hooks import Hook

from basicsr_multigrid.hooks.registry import HOOKS


@HOOKS.register_module()
class MultigridLRHook(Hook):
    """The schedule's per-phase LR factor, and a log line as training enters each phase.

    The runner installs it for every run with a multigrid schedule: the factor holds the `stage_lr_factors` of
    the options and, with `batch_scaling` (constant_compute or constant_iterations), the `lr_batch_rule` factor of the
    phase's batch.
    """
    priority = 'NORMAL'
    needs_schedule = True

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

    def lr_factor(self, runner):
        return float(runner.phase.lr_factor)
