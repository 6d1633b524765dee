"""The learning rate of every iteration: BasicSR's scheduled value times the hooks' factors, set once.

BasicSR's schedulers step on their own copy of the param-group LRs (`ScheduledLRs`) instead of the optimizer's,
so a chainable scheduler (MultiStepRestartLR continues from the LR it set last) never sees a warmup, batch or
phase factor, and a resumed run continues from the scheduler's own saved state. `train.warmup_iter` keeps BasicSR's
meaning: while it lasts, its linear ramp replaces the scheduled value (and a chainable scheduler goes on from it,
as in BasicSR).
"""
import math


class ScheduledLRs:
    """What a BasicSR scheduler sees of its optimizer: param groups holding only the scheduled `lr` and the
    `initial_lr`. Everything else (torch's step-order bookkeeping) is the real optimizer's."""

    def __init__(self, optimizer, lrs, scheduler=None):
        self.optimizer, self.scheduler = optimizer, scheduler
        self.param_groups = [{'lr': lr, 'initial_lr': group['initial_lr']}
                             for group, lr in zip(optimizer.param_groups, lrs)]

    def lrs(self):
        return [group['lr'] for group in self.param_groups]

    def __getattr__(self, name):
        if name == 'optimizer':  # not set yet (copy / unpickle)
            raise AttributeError(name)
        return getattr(self.optimizer, name)


def detach_schedulers(model):
    """Give each scheduler of `model` its own ScheduledLRs, starting from the scheduler's last value (after a
    resume, the value of the saved iteration). Returns one ScheduledLRs per optimizer."""
    schedulers = {id(getattr(scheduler.optimizer, 'optimizer', scheduler.optimizer)): scheduler
                  for scheduler in model.schedulers}
    views = []
    for optimizer in model.optimizers:
        for group in optimizer.param_groups:  # the unscaled LR, saved with the optimizer state
            group.setdefault('initial_lr', group['lr'])
        scheduler = schedulers.get(id(optimizer))
        lrs = scheduler.get_last_lr() if scheduler is not None else [g['initial_lr'] for g in optimizer.param_groups]
        view = ScheduledLRs(optimizer, lrs, scheduler)
        if scheduler is not None:
            scheduler.optimizer = view
        views.append(view)
    return views


class LearningRates:
    """Sets the LR of every optimizer group for one iteration: scheduled value x factor."""

    def __init__(self, model, warmup_iter=-1):
        self.model = model
        self.warmup_iter = warmup_iter
        self.scheduled = detach_schedulers(model)

    def set_for_iteration(self, current_iter, factor=1.0):
        """`current_iter` is BasicSR's (1-based). Steps the schedulers through the model's own
        `update_learning_rate`, then writes scheduled x factor into the optimizers."""
        self.model.update_learning_rate(current_iter, warmup_iter=self.warmup_iter)
        in_basicsr_warmup = current_iter < self.warmup_iter  # BasicSR wrote its warmup LR into the optimizer
        for optimizer, scheduled in zip(self.model.optimizers, self.scheduled):
            if in_basicsr_warmup:
                for group, scheduled_group in zip(optimizer.param_groups, scheduled.param_groups):
                    scheduled_group['lr'] = group['lr']
                if scheduled.scheduler is not None:  # saved with the state: a resume continues from it
                    scheduled.scheduler._last_lr = scheduled.lrs()
            for group, lr in zip(optimizer.param_groups, scheduled.lrs()):
                group['lr'] = lr * factor


def hook_lr_factor(hooks, runner):
    """Product of the LR factors of the hooks that give one (`lr_factor(runner)`); 1 without any."""
    return math.prod(hook.lr_factor(runner) for hook in hooks if hasattr(hook, 'lr_factor'))


def stage_periods(schedule):
    """`scheduler.periods: stages`: one cosine period per spatial stage; a fine-tune phase continues its stage's
    period (a restart there would jump the LR from eta_min to the peak in one step, with no warmup). BasicSR's
    restart falls one step after a period's end, so the first period is one shorter: the LR restarts exactly at
    each stage boundary and the last period ends at total_iter."""
    ends = {}
    for phase in schedule.phases:
        ends[phase.stage] = phase.end_iter
    ends = sorted(ends.values())
    lengths = [end - start for start, end in zip([0] + ends[:-1], ends)]
    return [lengths[0] - 1] + lengths[1:]


def resolve_scheduler_options(opt, schedule):
    """Options the schedule decides, filled in (once) before the model builds its schedulers and the hooks.

    Under `batch_scaling: constant_compute` the schedule runs its own, smaller number of iterations; iteration counts
    of the options (`train.warmup_iter`, `train.fix_flow`, a hook's `warmup_iter`, the scheduler's `periods`,
    `milestones`, `restarts` and `T_max`) count iterations of the fixed-shape run and are mapped to the iteration that
    reaches the same fraction of the run's clips (`MultigridSchedule.iteration_for_baseline`); a period sum of
    total_iter still ends at the run's end. Other modes keep them as written."""
    train_opt = opt['train']
    scheduler_opt = train_opt.get('scheduler') or {}
    if schedule.total_iter != schedule.base_total_iter:
        map_iteration_options(train_opt, scheduler_opt, schedule.iteration_for_baseline)
    if scheduler_opt.get('periods') == 'stages':
        periods = stage_periods(schedule)
        scheduler_opt['periods'] = periods
        scheduler_opt.setdefault('restart_weights', [1] * len(periods))


def map_iteration_options(train_opt, scheduler_opt, to_run_iter):
    """Rewrite the iteration counts of the options with `to_run_iter` (counts stay >= 1 where they were)."""
    def mapped(count):
        return max(1, to_run_iter(count)) if count > 0 else count

    for key in ('warmup_iter', 'fix_flow'):
        if isinstance(train_opt.get(key), int):
            train_opt[key] = mapped(train_opt[key])
    for hook_opt in train_opt.get('hooks') or []:
        if isinstance(hook_opt, dict) and isinstance(hook_opt.get('warmup_iter'), int):
            hook_opt['warmup_iter'] = mapped(hook_opt['warmup_iter'])
    for key in ('milestones', 'restarts'):
        if isinstance(scheduler_opt.get(key), list):
            scheduler_opt[key] = [mapped(m) for m in scheduler_opt[key]]
    if isinstance(scheduler_opt.get('T_max'), int):
        scheduler_opt['T_max'] = mapped(scheduler_opt['T_max'])
    periods = scheduler_opt.get('periods')
    if isinstance(periods, list) and all(isinstance(p, int) for p in periods):
        ends, end, previous = [], 0, 0
        for period in periods:  # cumulative ends mapped, each period still >= 1 iteration
            end += period
            previous = max(previous + 1, to_run_iter(end))
            ends.append(previous)
        scheduler_opt['periods'] = [b - a for a, b in zip([0] + ends[:-1], ends)]
