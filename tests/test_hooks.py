"""LR hooks on top of BasicSR's schedulers, checked against closed-form numbers, through the runner's LR step on
a real model."""
import copy
import math

import pytest

from basicsr_multigrid.hooks import build_hooks
from basicsr_multigrid.multigrid.schedule import MultigridSchedule
from basicsr_multigrid.training.learning_rate import hook_lr_factor, resolve_scheduler_options
from basicsr_multigrid.training.runner import TrainingRun
from basicsr_multigrid.utils.errors import OptionError


def model_options(total_iter=40, batch=4, world_size=1, scheduler=None, hooks=None, multigrid=None, warmup_iter=-1,
                  lr=1e-3):
    train = {'optim_g': {'type': 'Adam', 'lr': lr, 'betas': [0.9, 0.99]},
             'scheduler': scheduler or {'type': 'CosineAnnealingRestartLR', 'periods': [total_iter],
                                        'restart_weights': [1], 'eta_min': 1e-7},
             'total_iter': total_iter, 'warmup_iter': warmup_iter, 'flow_lr_mul': 0.125,
             'pixel_opt': {'type': 'CharbonnierLoss', 'loss_weight': 1.0, 'reduction': 'mean'},
             'hooks': hooks, 'multigrid': multigrid}
    return {'name': 'hooks', 'model_type': 'MultigridVideoRecurrentModel', 'scale': 4, 'num_gpu': 0,
            'is_train': True, 'dist': False, 'rank': 0, 'world_size': world_size,
            'datasets': {'train': {'num_frame': 6, 'gt_size': 64, 'batch_size_per_gpu': batch}},
            'network_g': {'type': 'BasicVSR', 'num_feat': 4, 'num_block': 1, 'spynet_path': None},
            'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None,
                     'experiments_root': '/nonexistent'},
            'logger': {'print_freq': 1, 'save_checkpoint_freq': 100},
            'train': train, 'val': {'val_freq': 100, 'metrics': None}}


def build(opt, resume_state=None):
    """The runner of a run with these options (no data: the LR step needs none)."""
    from basicsr.models import build_model
    from basicsr.utils import get_root_logger
    opt = copy.deepcopy(opt)
    schedule = MultigridSchedule.from_options(opt)
    resolve_scheduler_options(opt, schedule)
    model = build_model(opt)
    if resume_state is not None:
        model.resume_training(resume_state)
    return TrainingRun(opt, model, schedule, [], None, [], get_root_logger())


def lr_sequence(run, first, last):
    """The LR of the first param group at BasicSR iterations first..last (1-based), as the loop sets it."""
    lrs = []
    for current_iter in range(first, last + 1):
        run.current_iter = current_iter
        run.learning_rates.set_for_iteration(current_iter, hook_lr_factor(run.hooks, run))
        lrs.append(run.model.optimizers[0].param_groups[0]['lr'])
    return lrs


def cosine(it, period, base=1e-3, eta_min=1e-7, weight=1.0):
    return eta_min + weight * 0.5 * (base - eta_min) * (1 + math.cos(math.pi * it / period))


def test_warmup_and_linear_scaling_on_cosine_annealing():
    hooks = [{'type': 'LinearWarmupHook', 'warmup_iter': 10}, {'type': 'LinearScalingLRHook', 'reference_batch': 2}]
    run = build(model_options(hooks=hooks, batch=4, world_size=1))
    expected = [cosine(i - 1, 40) * min(1, i / 10) * (4 * 1 / 2) for i in range(1, 41)]
    assert lr_sequence(run, 1, 40) == pytest.approx(expected, rel=1e-9)
    flow_lr = run.model.optimizers[0].param_groups[1]['lr']
    assert flow_lr == pytest.approx(cosine(39, 40, base=1e-3 * 0.125) * 2, rel=1e-9)  # every group is scaled


def test_linear_scaling_uses_the_global_batch():
    hooks = [{'type': 'LinearScalingLRHook', 'reference_batch': 32}]
    run = build(model_options(hooks=hooks, batch=16, world_size=8))
    assert lr_sequence(run, 1, 1) == pytest.approx([cosine(0, 40) * 4])


def test_chainable_multistep_scheduler_does_not_compound_hook_factors():
    scheduler = {'type': 'MultiStepRestartLR', 'milestones': [10, 20], 'gamma': 0.5}
    hooks = [{'type': 'LinearScalingLRHook', 'reference_batch': 2}]
    run = build(model_options(scheduler=scheduler, hooks=hooks, batch=4))
    expected = [1e-3 * 0.5 ** ((i - 1 >= 10) + (i - 1 >= 20)) * 2 for i in range(1, 31)]
    assert lr_sequence(run, 1, 30) == pytest.approx(expected, rel=1e-12)


def test_stage_restarts_and_stage_lr_factors_follow_the_schedule():
    scheduler = {'type': 'CosineAnnealingRestartLR', 'periods': 'stages', 'restart_weights': [1, 1], 'eta_min': 1e-7}
    multigrid = {'spatial_sizes': [8, 16], 'stage_split': [0.25, 0.75], 'stage_lr_factors': [1.0, 0.5]}
    run = build(model_options(scheduler=scheduler, multigrid=multigrid))
    assert run.model.schedulers[0].periods == [9, 30]  # the first one ends a step early in BasicSR's convention
    expected = [cosine(i - 1, 9) if i <= 10 else 0.5 * cosine(i - 10, 30) for i in range(1, 41)]
    assert lr_sequence(run, 1, 40) == pytest.approx(expected, rel=1e-9)


def test_stage_periods_let_the_fine_tune_continue_the_last_stages_cosine():
    """No restart at the fine-tune phase: the LR keeps decaying into it instead of jumping back to the peak."""
    scheduler = {'type': 'CosineAnnealingRestartLR', 'periods': 'stages', 'restart_weights': [1, 1], 'eta_min': 1e-7}
    multigrid = {'spatial_sizes': [8, 16], 'stage_split': [0.25, 0.75], 'finetune_fraction': 0.25}
    run = build(model_options(scheduler=scheduler, multigrid=multigrid))
    finetune_start = next(p.start_iter for p in run.schedule.phases if p.finetune)
    second_stage = next(p.start_iter for p in run.schedule.phases if p.stage == 1)
    assert run.model.schedulers[0].periods == [second_stage - 1, 40 - second_stage]  # two periods, not three
    lrs = lr_sequence(run, 1, 40)
    assert lrs[finetune_start] < lrs[finetune_start - 1] < 1e-3 / 2
    expected = [cosine(i - 1, second_stage - 1) if i <= second_stage else cosine(i - second_stage, 40 - second_stage)
                for i in range(1, 41)]
    assert lrs == pytest.approx(expected, rel=1e-9)


def test_warmup_restarts_at_each_spatial_stage():
    hooks = [{'type': 'LinearWarmupHook', 'warmup_iter': 4, 'restart_at_stages': True}]
    scheduler = {'type': 'MultiStepRestartLR', 'milestones': [1000], 'gamma': 0.5}
    run = build(model_options(hooks=hooks, scheduler=scheduler, multigrid={'spatial_sizes': [8, 16]}))
    factors = [lr / 1e-3 for lr in lr_sequence(run, 1, 40)]
    second_stage = min(p.start_iter for p in run.schedule.phases if p.stage == 1)
    assert factors[:5] == pytest.approx([0.25, 0.5, 0.75, 1, 1])
    assert factors[second_stage - 1:second_stage + 5] == pytest.approx([1, 0.25, 0.5, 0.75, 1, 1])


def test_resume_restarts_from_the_scheduler_lr_not_the_hook_scaled_one():
    scheduler = {'type': 'MultiStepRestartLR', 'milestones': [10, 20], 'gamma': 0.5}
    hooks = [{'type': 'LinearWarmupHook', 'warmup_iter': 8}, {'type': 'LinearScalingLRHook', 'reference_batch': 1}]
    opt = model_options(scheduler=scheduler, hooks=hooks, batch=4)
    uninterrupted = lr_sequence(build(opt), 1, 30)
    first = build(opt)
    lr_sequence(first, 1, 12)
    state = {'optimizers': [o.state_dict() for o in first.model.optimizers],
             'schedulers': [s.state_dict() for s in first.model.schedulers]}
    resumed = build(opt, resume_state=copy.deepcopy(state))
    assert lr_sequence(resumed, 13, 30) == pytest.approx(uninterrupted[12:], rel=1e-12)


def test_bad_hook_options_name_the_key():
    with pytest.raises(OptionError, match=r'^train.hooks\[0\].type: unknown hook'):
        build_hooks([{'type': 'NoSuchHook'}])
    with pytest.raises(OptionError, match=r'^train.hooks\[1\]: expected a mapping'):
        build_hooks([{'type': 'LinearWarmupHook'}, 'LinearWarmupHook'])
    with pytest.raises(OptionError, match='warmup_iter: must be >= 1'):
        build_hooks([{'type': 'LinearWarmupHook', 'warmup_iter': 0}])
    with pytest.raises(OptionError, match=r'^train.hooks\[0\] \(LinearScalingLRHook\): .*unexpected keyword'):
        build_hooks([{'type': 'LinearScalingLRHook', 'refrence_batch': 8}])


@pytest.mark.parametrize('resume_at', [2, 3, 4, 6])
def test_basicsr_warmup_with_a_chainable_scheduler_resumes_exactly(resume_at):
    """BasicSR's own `train.warmup_iter`: its ramp replaces the scheduled LR and MultiStepRestartLR goes on from the
    last warmup value (as in basicsr); a resume inside or just after the warmup continues the same sequence."""
    scheduler = {'type': 'MultiStepRestartLR', 'milestones': [6], 'gamma': 0.5}
    opt = model_options(scheduler=scheduler, warmup_iter=4)
    uninterrupted = lr_sequence(build(opt), 1, 10)
    assert uninterrupted == pytest.approx([v * 1e-3 for v in (0.25, 0.5, 0.75, 0.75, 0.75, 0.75) + (0.375,) * 4])
    first = build(opt)
    lr_sequence(first, 1, resume_at)
    state = {'optimizers': [o.state_dict() for o in first.model.optimizers],
             'schedulers': [s.state_dict() for s in first.model.schedulers]}
    resumed = build(opt, resume_state=copy.deepcopy(state))
    assert lr_sequence(resumed, resume_at + 1, 10) == pytest.approx(uninterrupted[resume_at:], rel=1e-12)
