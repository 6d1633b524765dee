"""Tests for the multigrid schedule: invariants over random options plus concrete recipes."""
import copy
import json
import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from basicsr_multigrid.multigrid.schedule import MultigridSchedule, Phase, ScheduleError
from basicsr_multigrid.training.learning_rate import resolve_scheduler_options

PAPER_SHAPES = [(32, 7), (32, 11), (32, 15), (64, 7), (64, 11), (64, 15)]


def make_options(multigrid=None, *, total_iter=300000, scale=4, num_frame=15, gt_size=256, batch_size=1):
    opt = {
        'scale': scale,
        'datasets': {'train': {'num_frame': num_frame, 'gt_size': gt_size, 'batch_size_per_gpu': batch_size}},
        'train': {'total_iter': total_iter},
    }
    if multigrid is not None:
        opt['train']['multigrid'] = multigrid
    return opt


def paper_schedule(**multigrid):
    return MultigridSchedule.from_options(make_options(multigrid))


def shapes(schedule):
    return [(p.lq_size, p.num_frame) for p in schedule.phases]


# ---------------------------------------------------------------------------- random valid options
@st.composite
def split_options(draw, num_parts):
    """'equal', 'cost_balanced' or explicit positive fractions summing to 1."""
    kind = draw(st.sampled_from(['equal', 'cost_balanced', 'list']))
    if kind != 'list':
        return kind
    weights = draw(st.lists(st.integers(1, 20), min_size=num_parts, max_size=num_parts))
    return [w / sum(weights) for w in weights]


@st.composite
def multigrid_options(draw):
    """A valid option dict and the frame counts its temporal fractions should produce."""
    scale = draw(st.sampled_from([1, 2, 4]))
    base_lq_size = draw(st.integers(2, 64))
    num_frame = draw(st.integers(1, 30))
    spatial_sizes = sorted(draw(st.sets(st.integers(1, 128), min_size=1, max_size=4)))
    frame_counts = sorted(draw(st.sets(st.integers(1, num_frame), min_size=1, max_size=min(num_frame, 4))))
    cycles = draw(st.integers(1, 3))
    finetune_fraction = draw(st.one_of(st.just(0.0), st.floats(0.0, 0.99)))
    num_phases = len(spatial_sizes) * len(frame_counts) * cycles + (finetune_fraction > 0)
    multigrid = {
        'spatial_sizes': spatial_sizes,
        'temporal_fractions': [n / num_frame for n in frame_counts],
        'temporal_cycles': cycles,
        'stage_split': draw(split_options(len(spatial_sizes))),
        'phase_split': draw(split_options(len(frame_counts) * cycles)),
        'finetune_fraction': finetune_fraction,
        'batch_scaling': draw(st.sampled_from(['none', 'constant_compute', 'constant_iterations'])),
        'max_batch_size_per_gpu': draw(st.one_of(st.none(), st.integers(0, 64))),  # added to the base batch below
        'lr_batch_rule': draw(st.sampled_from(['linear', 'sqrt'])),
        'max_lr_factor': draw(st.one_of(st.none(), st.floats(1, 100))),
        'stage_lr_factors': draw(st.lists(st.floats(0.01, 10), min_size=len(spatial_sizes),
                                          max_size=len(spatial_sizes))),
    }
    opt = make_options(multigrid, total_iter=draw(st.integers(num_phases, 10**6)), scale=scale,
                       num_frame=num_frame, gt_size=base_lq_size * scale, batch_size=draw(st.integers(1, 16)))
    if multigrid['max_batch_size_per_gpu'] is not None:
        multigrid['max_batch_size_per_gpu'] += opt['datasets']['train']['batch_size_per_gpu']
    return opt, frame_counts


@settings(max_examples=200, deadline=None)
@given(multigrid_options())
def test_phases_tile_the_run_and_follow_the_multigrid_order(case):
    opt, frame_counts = case
    mg = opt['train']['multigrid']
    schedule = MultigridSchedule.from_options(opt)
    phases = schedule.phases

    assert phases[0].start_iter == 0 and phases[-1].end_iter == schedule.total_iter
    assert schedule.base_total_iter == opt['train']['total_iter']
    if mg['batch_scaling'] != 'constant_compute':  # only the sample budget has its own iteration count
        assert schedule.total_iter == opt['train']['total_iter']
    assert [p.index for p in phases] == list(range(len(phases)))
    for before, after in zip(phases, phases[1:]):
        assert after.start_iter == before.end_iter
        assert after.lq_size >= before.lq_size, 'space never shrinks'
        assert not (after.lq_size > before.lq_size and after.num_frame > before.num_frame), \
            'space and time never grow at the same boundary'
    assert all(p.num_iters >= 1 for p in phases)
    assert all(p.gt_size == p.lq_size * opt['scale'] for p in phases)

    # Inside each stage the clip grows within a cycle and resets to the shortest at cycle and stage starts.
    for stage, lq_size in enumerate(mg['spatial_sizes']):
        stage_phases = [p for p in phases if p.stage == stage and not p.finetune]
        assert {p.lq_size for p in stage_phases} == {lq_size}
        assert [p.num_frame for p in stage_phases] == frame_counts * mg['temporal_cycles']

    finetune = [p for p in phases if p.finetune]
    assert len(finetune) == (mg['finetune_fraction'] > 0)
    if finetune:
        assert finetune == [phases[-1]]
        assert (phases[-1].lq_size, phases[-1].num_frame) == (mg['spatial_sizes'][-1], schedule.base_num_frame)

    for phase in phases:
        assert schedule.phase_at(phase.start_iter) is phase and schedule.phase_at(phase.end_iter - 1) is phase
        assert schedule.batch_size_at(phase.start_iter) == phase.batch_size_per_gpu
        assert (schedule.samples_before(phase.end_iter) - schedule.samples_before(phase.start_iter)
                == phase.num_iters * phase.batch_size_per_gpu)

    assert math.isclose(sum(schedule.compute_shares()), 1.0)
    assert all(share > 0 for share in schedule.compute_shares())
    assert MultigridSchedule.from_dict(json.loads(json.dumps(schedule.to_dict()))) == schedule


@settings(max_examples=200, deadline=None)
@given(multigrid_options())
def test_batch_sizes_and_lr_factors_follow_the_scaling_mode(case):
    opt, _ = case
    mg = opt['train']['multigrid']
    schedule = MultigridSchedule.from_options(opt)
    base_batch = schedule.base_batch_size
    full_cost = schedule.base_num_frame * mg['spatial_sizes'][-1] ** 2
    cap = mg['max_batch_size_per_gpu'] or math.inf
    for phase in schedule.phases:
        stage_factor = mg['stage_lr_factors'][phase.stage]
        if mg['batch_scaling'] == 'none':
            assert phase.batch_size_per_gpu == base_batch
            assert math.isclose(phase.lr_factor, stage_factor)
        else:
            exact = base_batch * full_cost / (phase.num_frame * phase.lq_size ** 2)
            assert phase.batch_size_per_gpu == min(cap, max(1, math.floor(exact + 0.5)))
            batch_factor = phase.batch_size_per_gpu / base_batch
            if mg['lr_batch_rule'] == 'sqrt':
                batch_factor = math.sqrt(batch_factor)
            batch_factor = min(batch_factor, mg['max_lr_factor'] or math.inf)
            assert math.isclose(phase.lr_factor, stage_factor * batch_factor)


@settings(max_examples=200, deadline=None)
@given(multigrid_options())
def test_cost_balanced_splits_equalise_compute_up_to_rounding(case):
    opt, _ = case
    opt['train']['multigrid'].update(stage_split='cost_balanced', phase_split='cost_balanced', finetune_fraction=0)
    if opt['train']['multigrid']['batch_scaling'] == 'constant_compute':  # balances clips: tests/test_sample_budget.py
        opt['train']['multigrid']['batch_scaling'] = 'constant_iterations'
    schedule = MultigridSchedule.from_options(opt)
    # Equal compute per phase means iterations inversely proportional to the per-iteration cost.
    inverse_costs = [1 / schedule.relative_cost(p) for p in schedule.phases]
    ideal_iters = [schedule.total_iter * w / sum(inverse_costs) for w in inverse_costs]
    if min(ideal_iters) >= 1:  # otherwise phases are pinned at their 1-iteration minimum and others absorb it
        for phase, ideal in zip(schedule.phases, ideal_iters):
            assert abs(phase.num_iters - ideal) < 1 + 1e-6
    else:
        assert all(p.num_iters == 1 for p, ideal in zip(schedule.phases, ideal_iters) if ideal < 1)


# ---------------------------------------------------------------------------- concrete recipes
def test_paper_recipe_has_six_equal_phases_and_2_18x_speedup():
    schedule = paper_schedule()
    assert shapes(schedule) == PAPER_SHAPES
    assert [p.num_iters for p in schedule.phases] == [50000] * 6
    assert [p.gt_size for p in schedule.phases] == [128] * 3 + [256] * 3
    assert [p.stage for p in schedule.phases] == [0, 0, 0, 1, 1, 1]
    costs = [schedule.relative_cost(p) for p in schedule.phases]
    assert costs == pytest.approx([7 / 60, 11 / 60, 0.25, 7 / 15, 11 / 15, 1.0])
    assert schedule.predicted_speedup() == pytest.approx(1 / (sum(costs) / 6))
    assert schedule.predicted_speedup() == pytest.approx(2.1818, abs=1e-4)
    assert schedule.is_multigrid
    assert (schedule.min_lq_size, schedule.max_lq_size, schedule.min_num_frame, schedule.max_num_frame) == \
        (32, 64, 7, 15)


def test_paper_recipe_table_shows_every_phase_and_the_speedup():
    table = paper_schedule().format_table()
    lines = table.splitlines()
    assert len(lines) == 1 + 6 + 2
    assert lines[-2] == 'iterations: 300000 (options: 300000), clips/gpu: 300000 (options: 300000)'
    assert lines[-1] == 'predicted speedup over fixed-shape baseline: 2.18x'
    assert '150000-200000' in lines[4] and '36.4%' in lines[6]


def test_missing_or_null_section_gives_one_phase_at_the_baseline_shape():
    for opt in (make_options(), make_options(batch_size=3)):
        schedule = MultigridSchedule.from_options(opt)
        assert len(schedule.phases) == 1 and not schedule.is_multigrid
        assert shapes(schedule) == [(64, 15)]
        assert schedule.predicted_speedup() == 1.0
    null_section = make_options()
    null_section['train']['multigrid'] = None
    assert MultigridSchedule.from_options(null_section) == MultigridSchedule.from_options(make_options())


def test_integral_float_total_iter_is_accepted():
    assert MultigridSchedule.from_options(make_options({}, total_iter=3e5)).total_iter == 300000


def test_temporal_fractions_floor_exactly():
    schedule = MultigridSchedule.from_options(make_options({'temporal_fractions': [0.25, 0.75, 1.0]}, num_frame=16))
    assert [p.num_frame for p in schedule.phases[:3]] == [4, 12, 16]


def test_cost_balanced_recipe_gives_equal_compute_shares():
    schedule = paper_schedule(stage_split='cost_balanced', phase_split='cost_balanced')
    assert schedule.compute_shares() == pytest.approx([1 / 6] * 6, abs=1e-4)
    stage_only = paper_schedule(stage_split='cost_balanced')
    shares = stage_only.compute_shares()
    assert sum(shares[:3]) == pytest.approx(0.5, abs=1e-4)


def test_explicit_splits_and_finetune():
    schedule = paper_schedule(stage_split=[0.25, 0.75], phase_split=[0.2, 0.3, 0.5], finetune_fraction=0.2)
    assert [p.num_iters for p in schedule.phases] == [12000, 18000, 30000, 36000, 54000, 90000, 60000]
    assert schedule.phases[-1].finetune and schedule.phases[-1].stage == 1
    assert shapes(schedule)[-1] == (64, 15)


def test_temporal_cycles_repeat_the_clip_progression():
    schedule = paper_schedule(temporal_cycles=2, spatial_sizes=[16, 32, 64])
    assert [p.num_frame for p in schedule.phases] == [7, 11, 15] * 6
    assert [p.lq_size for p in schedule.phases] == [16] * 6 + [32] * 6 + [64] * 6


def test_constant_iterations_scales_batch_and_lr():
    opt = make_options({'batch_scaling': 'constant_iterations', 'stage_lr_factors': [1.0, 0.5],
                        'finetune_fraction': 0.1}, batch_size=4)
    schedule = MultigridSchedule.from_options(opt)
    # B = round(4 * 15 * 64^2 / (T * S^2)): 240/7, 240/11, 16, 60/7, 60/11, 4, then the full-shape finetune.
    assert [p.batch_size_per_gpu for p in schedule.phases] == [34, 22, 16, 9, 5, 4, 4]
    assert [p.lr_factor for p in schedule.phases] == pytest.approx([8.5, 5.5, 4.0, 1.125, 0.625, 0.5, 0.5])
    assert (schedule.min_batch_size, schedule.max_batch_size) == (4, 34)


def test_samples_before_matches_brute_force():
    opt = make_options({'batch_scaling': 'constant_compute', 'temporal_cycles': 2, 'finetune_fraction': 0.15},
                       total_iter=997, batch_size=3)
    schedule = MultigridSchedule.from_options(opt)
    running = 0
    for it in range(schedule.total_iter + 1):
        assert schedule.samples_before(it) == running
        if it < schedule.total_iter:
            running += schedule.batch_size_at(it)


def test_phase_at_every_boundary():
    schedule = paper_schedule(finetune_fraction=0.1, stage_split='cost_balanced')
    for phase in schedule.phases:
        assert schedule.phase_at(phase.start_iter) is phase
        assert schedule.phase_at(phase.end_iter - 1) is phase
    for outside in (-1, schedule.total_iter):
        with pytest.raises(ValueError):
            schedule.phase_at(outside)
    with pytest.raises(ValueError):
        schedule.samples_before(schedule.total_iter + 1)


def test_every_phase_gets_an_iteration_even_with_tiny_shares():
    schedule = paper_schedule(finetune_fraction=1e-9, stage_split=[1e-7, 1 - 1e-7])
    assert len(schedule.phases) == 7 and all(p.num_iters >= 1 for p in schedule.phases)
    minimal = MultigridSchedule.from_options(make_options({}, total_iter=6))
    assert [p.num_iters for p in minimal.phases] == [1] * 6


def test_from_dict_rejects_gaps():
    data = paper_schedule().to_dict()
    data['phases'][1]['start_iter'] += 1
    with pytest.raises(ScheduleError, match=r'^schedule\.phases\[1\]'):
        MultigridSchedule.from_dict(data)
    with pytest.raises(ScheduleError, match=r'^schedule:'):
        MultigridSchedule.from_dict({'phases': []})


def test_phase_to_dict_round_trips():
    phase = paper_schedule().phases[2]
    assert Phase(**phase.to_dict()) == phase and phase.num_iters == 50000


# ---------------------------------------------------------------------------- bad options
def with_dataset(**fields):
    opt = make_options({})
    opt['datasets']['train'].update(fields)
    return opt


def without(path):
    opt = make_options({})
    *parents, leaf = path.split('.')
    node = opt
    for key in parents:
        node = node[key]
    del node[leaf]
    return opt


BAD_OPTIONS = [
    ('train.total_iter', make_options({}, total_iter=0)),
    ('train.total_iter', make_options({}, total_iter=1.5)),
    ('train.total_iter', make_options({}, total_iter='3e5')),
    ('train.total_iter', make_options({}, total_iter=5)),  # fewer iterations than phases
    ('train.total_iter', without('train.total_iter')),
    ('scale', make_options({}, scale=0)),
    ('datasets.train.num_frame', with_dataset(num_frame=0)),
    ('datasets.train.gt_size', with_dataset(gt_size=258)),
    ('datasets.train.gt_size', without('datasets.train.gt_size')),
    ('datasets.train.batch_size_per_gpu', with_dataset(batch_size_per_gpu=True)),
    ('datasets', {'scale': 4, 'datasets': [], 'train': {'total_iter': 10}}),
    ('options', None),
    ('train.multigrid', make_options('yes')),
    ('train.multigrid.spatial_size', make_options({'spatial_size': [32, 64]})),
    ('train.multigrid.spatial_sizes', make_options({'spatial_sizes': 'abc'})),
    ('train.multigrid.spatial_sizes', make_options({'spatial_sizes': [64, 32]})),
    ('train.multigrid.spatial_sizes', make_options({'spatial_sizes': [0, 32]})),
    ('train.multigrid.spatial_sizes', make_options({}, gt_size=4)),  # default sizes need lq >= 2
    ('train.multigrid.temporal_fractions', make_options({'temporal_fractions': [0.5, 1.5]})),
    ('train.multigrid.temporal_fractions', make_options({'temporal_fractions': [0.5, 0.52]})),
    ('train.multigrid.temporal_fractions', make_options({'temporal_fractions': [1.0, 0.5]})),
    ('train.multigrid.temporal_fractions', make_options({'temporal_fractions': []})),
    ('train.multigrid.temporal_cycles', make_options({'temporal_cycles': 0})),
    ('train.multigrid.stage_split', make_options({'stage_split': [0.5, 0.4]})),
    ('train.multigrid.stage_split', make_options({'stage_split': [1.0]})),
    ('train.multigrid.stage_split', make_options({'stage_split': [1.5, -0.5]})),
    ('train.multigrid.phase_split', make_options({'phase_split': 'bogus'})),
    ('train.multigrid.phase_split', make_options({'phase_split': [0.5, 0.5]})),
    ('train.multigrid.finetune_fraction', make_options({'finetune_fraction': 1.0})),
    ('train.multigrid.finetune_fraction', make_options({'finetune_fraction': -0.1})),
    ('train.multigrid.batch_scaling', make_options({'batch_scaling': 'linear'})),
    ('train.multigrid.stage_lr_factors', make_options({'stage_lr_factors': [1, -1]})),
    ('train.multigrid.stage_lr_factors', make_options({'stage_lr_factors': [1]})),
]


@pytest.mark.parametrize('key, opt', BAD_OPTIONS, ids=[f'{i}-{key}' for i, (key, _) in enumerate(BAD_OPTIONS)])
def test_bad_options_name_the_key_in_one_line(key, opt):
    with pytest.raises(ScheduleError) as excinfo:
        MultigridSchedule.from_options(copy.deepcopy(opt))
    message = str(excinfo.value)
    assert message.startswith(f'{key}: ') and '\n' not in message
    assert isinstance(excinfo.value, ValueError)


def test_unknown_key_lists_the_valid_keys():
    with pytest.raises(ScheduleError, match='valid keys are spatial_sizes, temporal_fractions'):
        MultigridSchedule.from_options(make_options({'spatial_size': [32, 64]}))


def test_split_sum_message():
    with pytest.raises(ScheduleError, match=r'^train\.multigrid\.stage_split: fractions sum to 0\.9, must sum to 1$'):
        MultigridSchedule.from_options(make_options({'stage_split': [0.5, 0.4]}))


# ---------------------------------------------------------------------------- model and data limits
def test_check_limits_accepts_a_fitting_schedule():
    paper_schedule().check_limits(min_lq_size=32, lq_size_multiple=4, min_num_frame=7, max_lq_size=(64, 112),
                                  max_num_frame=15)


@pytest.mark.parametrize('limits, expected', [
    (dict(min_lq_size=64, model_name='BasicVSRPlusPlus'),
     'train.multigrid.spatial_sizes: LR patch 32 is below the model minimum 64 (BasicVSRPlusPlus); '
     'use sizes >= 64'),
    (dict(lq_size_multiple=24),
     'train.multigrid.spatial_sizes: LR patch 32 is not a multiple of 24 required by the model; '
     'use sizes divisible by 24'),
    (dict(max_lq_size=(48, 60)),
     'train.multigrid.spatial_sizes: LR patch 64 exceeds the smallest LR frame 48x60; use sizes <= 48'),
    (dict(min_num_frame=9),
     'train.multigrid.temporal_fractions: clip of 7 frames is below the model minimum 9; '
     'use fractions f with floor(num_frame * f) >= 9'),
    (dict(max_num_frame=10),
     'datasets.train.num_frame: 15 frames exceed the shortest clip (10 frames); use num_frame <= 10'),
])
def test_check_limits_names_the_option_to_change(limits, expected):
    with pytest.raises(ScheduleError) as excinfo:
        paper_schedule().check_limits(**limits)
    assert str(excinfo.value) == expected


def test_check_limits_on_a_fixed_shape_run_points_at_the_dataset_options():
    schedule = MultigridSchedule.from_options(make_options(gt_size=128))
    with pytest.raises(ScheduleError, match=r'^datasets\.train\.gt_size: LR patch 32 .* use gt_size >= 256$'):
        schedule.check_limits(min_lq_size=64)
    with pytest.raises(ScheduleError, match=r'^datasets\.train\.gt_size: LR patch 32 exceeds .*16x16'):
        schedule.check_limits(max_lq_size=16)
    with pytest.raises(ScheduleError, match=r'^datasets\.train\.num_frame: 15 frames are below'):
        schedule.check_limits(min_num_frame=20)


# ---------------------------------------------------------------------------- batch_scaling: constant_compute
# The sample budget (Wu et al. 2020): the run draws the options' total_iter x B0 clips, a phase's share of them is
# its stage/phase split, its batch B0 x T0*S0^2 / (T*S^2) (rounded half up, capped by max_batch_size_per_gpu) and
# its iterations its clips / its batch. Also the renamed old mode (`constant_iterations`), the LR rule, and the
# options' iteration counts mapped onto the run's.
def sample_budget(case):
    opt, _ = case
    opt = copy.deepcopy(opt)
    opt['train']['multigrid']['batch_scaling'] = 'constant_compute'
    return opt


def table(schedule):
    return [(p.start_iter, p.end_iter, p.lq_size, p.num_frame, p.batch_size_per_gpu, round(p.lr_factor, 6))
            for p in schedule.phases]


@settings(max_examples=200, deadline=None)
@given(multigrid_options())
def test_clips_follow_the_split_of_the_budget_and_iterations_are_clips_over_batch(case):
    opt = sample_budget(case)
    schedule = MultigridSchedule.from_options(opt)
    base_batch, options_iters = schedule.base_batch_size, opt['train']['total_iter']
    budget = options_iters * base_batch
    assert schedule.base_total_iter == options_iters
    assert schedule.total_iter == sum(p.num_iters for p in schedule.phases)
    assert schedule.total_clips == sum(p.num_clips for p in schedule.phases)
    # Each phase's clips are its exact integer share of the budget, drawn in whole batches (rounded half up, at
    # least one): a phase is off its share by at most one batch, the run off the budget by at most the batches' sum.
    assert abs(schedule.total_clips - budget) <= sum(p.batch_size_per_gpu for p in schedule.phases)
    # The shares are those of the same options without batch scaling (that split iterations of B0 clips each).
    none = copy.deepcopy(opt)
    none['train']['multigrid']['batch_scaling'] = 'none'
    fixed_batch = MultigridSchedule.from_options(none)
    assume(all(p.num_iters >= 2 for p in fixed_batch.phases))  # no phase pinned at its one-iteration minimum
    for phase, reference in zip(schedule.phases, fixed_batch.phases):
        assert abs(phase.num_clips - base_batch * reference.num_iters) < base_batch + 1 + phase.batch_size_per_gpu
    assert MultigridSchedule.from_dict(json.loads(json.dumps(schedule.to_dict()))) == schedule


@settings(max_examples=100, deadline=None)
@given(multigrid_options())
def test_options_iteration_counts_map_onto_the_run_by_clips(case):
    schedule = MultigridSchedule.from_options(sample_budget(case))
    base = schedule.base_total_iter
    assert schedule.iteration_for_baseline(0) == 0 and schedule.iteration_for_baseline(base) == schedule.total_iter
    mapped = [schedule.iteration_for_baseline(k) for k in range(0, base + 1, max(1, base // 50))]
    assert mapped == sorted(mapped)
    if schedule.total_iter == base:  # the run has the options' iteration count: their counts are the run's
        assert mapped == list(range(0, base + 1, max(1, base // 50)))
        return
    for k, n in zip(range(0, base + 1, max(1, base // 50)), mapped):
        target = k * schedule.total_clips / base  # the first iteration by which that fraction of the clips is drawn
        assert schedule.samples_before(n) >= target - 1e-6
        assert n == 0 or schedule.samples_before(n - 1) < target


def test_paper_recipe_under_the_sample_budget():
    opt = make_options({'batch_scaling': 'constant_compute', 'stage_lr_factors': [1.0, 0.5],
                        'finetune_fraction': 0.1}, batch_size=4)
    schedule = MultigridSchedule.from_options(opt)
    # B = round(4 * 15 * 64^2 / (T * S^2)) as with constant_iterations; 1.2M clips: 0.9 / 6 of them per phase
    assert [p.batch_size_per_gpu for p in schedule.phases] == [34, 22, 16, 9, 5, 4, 4]
    assert [p.num_iters for p in schedule.phases] == [5294, 8182, 11250, 20000, 36000, 45000, 30000]
    assert [p.lr_factor for p in schedule.phases] == pytest.approx([8.5, 5.5, 4.0, 1.125, 0.625, 0.5, 0.5])
    assert schedule.total_iter == 155726 < schedule.base_total_iter == 300000
    assert abs(schedule.total_clips - 1_200_000) <= 34
    # uncapped, every iteration costs about the full shape's; the compute is that of batch_scaling: none
    assert all(abs(schedule.relative_cost(p) - 1) < 0.1 for p in schedule.phases)
    none = MultigridSchedule.from_options(make_options({'finetune_fraction': 0.1}, batch_size=4))
    assert schedule.predicted_speedup() == pytest.approx(none.predicted_speedup(), rel=1e-3)


def test_cap_lr_rule_and_max_lr_factor():
    opt = make_options({'batch_scaling': 'constant_compute', 'max_batch_size_per_gpu': 12, 'lr_batch_rule': 'sqrt',
                        'max_lr_factor': 3}, batch_size=4)
    schedule = MultigridSchedule.from_options(opt)
    assert [p.batch_size_per_gpu for p in schedule.phases] == [12, 12, 12, 9, 5, 4]
    assert [p.lr_factor for p in schedule.phases] == pytest.approx([math.sqrt(3)] * 3 + [1.5, math.sqrt(1.25), 1])
    assert [p.num_iters for p in schedule.phases] == [16667] * 3 + [22222, 40000, 50000]
    capped = MultigridSchedule.from_options(make_options({'batch_scaling': 'constant_compute', 'max_lr_factor': 2},
                                                         batch_size=4))
    assert [p.lr_factor for p in capped.phases] == pytest.approx([2, 2, 2, 2, 1.25, 1])


# Phase tables (start, end, lq_size, num_frame, batch, lr factor) that `batch_scaling: constant_compute` gave before
# the sample budget, computed with that code: `constant_iterations` must reproduce them exactly.
OLD_CONSTANT_COMPUTE = [
    (dict(stage_lr_factors=[1.0, 0.5], finetune_fraction=0.1), 300000, 15, 256, 4,
     [(0, 45000, 32, 7, 34, 8.5), (45000, 90000, 32, 11, 22, 5.5), (90000, 135000, 32, 15, 16, 4.0),
      (135000, 180000, 64, 7, 9, 1.125), (180000, 225000, 64, 11, 5, 0.625), (225000, 270000, 64, 15, 4, 0.5),
      (270000, 300000, 64, 15, 4, 0.5)]),
    (dict(temporal_cycles=2, finetune_fraction=0.15, stage_split='cost_balanced'), 997, 15, 256, 3,
     [(0, 70, 32, 7, 26, 8.666667), (70, 140, 32, 11, 16, 5.333333), (140, 210, 32, 15, 12, 4.0),
      (210, 280, 32, 7, 26, 8.666667), (280, 350, 32, 11, 16, 5.333333), (350, 420, 32, 15, 12, 4.0),
      (420, 492, 64, 7, 6, 2.0), (492, 564, 64, 11, 4, 1.333333), (564, 635, 64, 15, 3, 1.0),
      (635, 706, 64, 7, 6, 2.0), (706, 777, 64, 11, 4, 1.333333), (777, 848, 64, 15, 3, 1.0),
      (848, 997, 64, 15, 3, 1.0)]),
    (dict(spatial_sizes=[8, 16, 32], phase_split='cost_balanced'), 1234, 8, 128, 2,
     [(0, 138, 8, 4, 64, 32.0), (138, 274, 8, 6, 43, 21.5), (274, 411, 8, 8, 32, 16.0), (411, 550, 16, 4, 16, 8.0),
      (550, 684, 16, 6, 11, 5.5), (684, 823, 16, 8, 8, 4.0), (823, 965, 32, 4, 4, 2.0), (965, 1092, 32, 6, 3, 1.5),
      (1092, 1234, 32, 8, 2, 1.0)]),
]


@pytest.mark.parametrize('multigrid, total_iter, num_frame, gt_size, batch, expected', OLD_CONSTANT_COMPUTE)
def test_constant_iterations_reproduces_the_old_constant_compute(multigrid, total_iter, num_frame, gt_size, batch,
                                                                 expected):
    opt = make_options(dict(multigrid, batch_scaling='constant_iterations'), total_iter=total_iter,
                       num_frame=num_frame, gt_size=gt_size, batch_size=batch)
    schedule = MultigridSchedule.from_options(opt)
    assert table(schedule) == expected
    assert schedule.total_iter == schedule.base_total_iter == total_iter
    assert [schedule.iteration_for_baseline(k) for k in (0, 1, 17, total_iter)] == [0, 1, 17, total_iter]


def test_a_serialised_schedule_without_base_total_iter_still_loads():
    schedule = MultigridSchedule.from_options(make_options({}))
    d = schedule.to_dict()
    del d['base_total_iter']
    assert MultigridSchedule.from_dict(d) == schedule


@pytest.mark.parametrize('key, value', [
    ('batch_scaling', 'constant_samples'),
    ('max_batch_size_per_gpu', 3),  # below the base batch 4
    ('max_batch_size_per_gpu', 8.0),
    ('max_batch_size_per_gpu', True),
    ('lr_batch_rule', 'square'),
    ('max_lr_factor', 0.5),
    ('max_lr_factor', 'x16'),
])
def test_bad_sample_budget_options_name_the_key_in_one_line(key, value):
    with pytest.raises(ScheduleError) as error:
        MultigridSchedule.from_options(make_options({'batch_scaling': 'constant_compute', key: value}, batch_size=4))
    message = str(error.value)
    assert message.startswith(f'train.multigrid.{key}: ') and '\n' not in message


def test_scheduler_periods_milestones_and_warmups_map_onto_the_run():
    opt = make_options({'batch_scaling': 'constant_compute'}, batch_size=4)
    opt['train'].update(warmup_iter=3000, fix_flow=5000, hooks=[{'type': 'LinearWarmupHook', 'warmup_iter': 5000}],
                        scheduler={'type': 'CosineAnnealingRestartLR', 'periods': [100000, 200000]})
    schedule = MultigridSchedule.from_options(opt)
    resolve_scheduler_options(opt, schedule)
    periods = opt['train']['scheduler']['periods']
    assert sum(periods) == schedule.total_iter and periods[0] == schedule.iteration_for_baseline(100000)
    assert opt['train']['warmup_iter'] == schedule.iteration_for_baseline(3000) < 3000
    assert opt['train']['hooks'][0]['warmup_iter'] == opt['train']['fix_flow'] == schedule.iteration_for_baseline(5000)
    multistep = make_options({'batch_scaling': 'constant_compute'}, batch_size=4)
    multistep['train']['scheduler'] = {'type': 'MultiStepRestartLR', 'milestones': [150000, 250000], 'restarts': [0]}
    resolve_scheduler_options(multistep, schedule)
    assert multistep['train']['scheduler']['milestones'] == [schedule.iteration_for_baseline(150000),
                                                             schedule.iteration_for_baseline(250000)]
    assert multistep['train']['scheduler']['restarts'] == [0]
    unchanged = make_options({'batch_scaling': 'constant_iterations'}, batch_size=4)
    unchanged['train'].update(warmup_iter=3000, scheduler={'type': 'CosineAnnealingRestartLR', 'periods': [300000]})
    before = copy.deepcopy(unchanged)
    resolve_scheduler_options(unchanged, MultigridSchedule.from_options(unchanged))
    assert unchanged == before
