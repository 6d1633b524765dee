from mmengine.hooks import Hook

from basicsr_multigrid.hooks.registry import HOOKS
from basicsr_multigrid.utils.errors import OptionError


@HOOKS.register_module()
class LinearWarmupHook(Hook):
    """Linear learning-rate warmup over `warmup_iter` iterations (the paper: 5,000 from the start).

    The LR at iteration i (0-based) is multiplied by (i + 1) / warmup_iter until warmup ends, as BasicSR's
    own `warmup_iter` does, but on top of any scheduler and of the other hooks' factors. With
    `restart_at_stages: true` the warmup is repeated at the start of each spatial stage of the multigrid schedule.
    """
    priority = 'HIGH'

    def __init__(self, warmup_iter=5000, restart_at_stages=False):
        if int(warmup_iter) < 1:
            raise OptionError(f'train.hooks.LinearWarmupHook.warmup_iter: must be >= 1, got {warmup_iter}')
        self.warmup_iter = int(warmup_iter)
        self.restart_at_stages = restart_at_stages

    @property
    def needs_schedule(self):
        return bool(self.restart_at_stages)

    def warmup_start(self, runner):
        if not self.restart_at_stages:
            return 0
        stage = runner.phase.stage
        return min(p.start_iter for p in runner.schedule.phases if p.stage == stage)

    def lr_factor(self, runner):
        done = runner.iter - self.warmup_start(runner) + 1
        return done / self.warmup_iter if done < self.warmup_iter else 1.0
