"""The cost model of the training step (basicsr_multigrid/benchmarks/cost_model.py): the non-negative fit, its
predictions, its JSON, and its command lines tools/benchmark_step.py --fit and tools/show_schedule.py --cost-model."""
import json

import numpy as np
import pytest

from basicsr_multigrid.benchmarks import cost_model
from basicsr_multigrid.multigrid.schedule import MultigridSchedule
from tests.conftest import MULTIGRID_DEMO, demo_options, run_tool, write_options

TRUE = {'fixed_s': 0.03, 'per_frame_s': 0.004, 'per_pixel_s': 8e-5}


def synthetic_seconds(shapes, coefficients=TRUE, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    c = coefficients
    return [(c['fixed_s'] + c['per_frame_s'] * b * t + c['per_pixel_s'] * b * t * s ** 2)
            * (1 + noise * rng.standard_normal()) for b, t, s in shapes]


def tiny_options(tmp_path, **overrides):
    """The multigrid demo shrunk to a model that steps in milliseconds: phases B1 x T2, T4 x LR 8, 16. The data
    folder is never read (only the model and the schedule are)."""
    settings = dict(network_g__num_feat=4, network_g__num_block=1, datasets__train__num_frame=4,
                    datasets__train__gt_size=64, datasets__train__batch_size_per_gpu=1, train__total_iter=12,
                    train__scheduler__periods=[12], train__multigrid__spatial_sizes=[8, 16])
    settings.update(overrides)
    return demo_options(str(tmp_path / 'unused-data'), base=MULTIGRID_DEMO, **settings)


def synthetic_fit(opt, shapes=None):
    shapes = shapes or cost_model.fit_grid()
    return cost_model.make_record(opt, 'options.yml', shapes, synthetic_seconds(shapes), machine='test machine',
                                  threads=1, device='cpu', repeats=1, warmup=0, grid_name='default')


def test_fit_recovers_known_coefficients_from_noisy_timings():
    shapes = cost_model.fit_grid()
    assert 8 <= len(shapes) <= 12
    coefficients, grid = cost_model.fit(shapes, synthetic_seconds(shapes, noise=0.02))
    for term, value in TRUE.items():
        assert coefficients[term] == pytest.approx(value, rel=0.25), term
    assert all(abs(g['rel_error']) < 0.08 for g in grid)
    exact, exact_grid = cost_model.fit(shapes, synthetic_seconds(shapes))
    assert exact == pytest.approx(TRUE, rel=1e-6) and all(abs(g['rel_error']) < 1e-9 for g in exact_grid)


def test_coefficients_are_never_negative():
    shapes = cost_model.fit_grid()
    seconds = [1e-4 * b * t * s ** 2 - 0.01 for b, t, s in shapes]  # plain least squares: a negative fixed cost
    unconstrained = np.linalg.lstsq(np.array([cost_model.features(*s) for s in shapes]), seconds, rcond=None)[0]
    assert unconstrained[0] < 0
    coefficients, _ = cost_model.fit(shapes, seconds)
    assert min(coefficients.values()) >= 0 and coefficients['fixed_s'] == 0
    assert coefficients['per_pixel_s'] > 0


def test_fit_grid_avoids_the_shapes_of_the_runs_it_predicts():
    demo = MultigridSchedule.from_options(demo_options('unused', base=MULTIGRID_DEMO))
    demo_shapes = {(p.batch_size_per_gpu, p.num_frame, p.lq_size) for p in demo.phases}
    assert not demo_shapes & set(cost_model.fit_grid())
    grid = cost_model.fit_grid()
    assert cost_model.fit_grid(avoid=[grid[0], grid[3]]) == grid[1:3] + grid[4:]


def test_predict_run_is_the_sum_over_phases_of_iterations_times_the_step():
    schedule = MultigridSchedule.from_options({
        'scale': 4, 'datasets': {'train': {'num_frame': 15, 'gt_size': 256, 'batch_size_per_gpu': 2}},
        'train': {'total_iter': 3000, 'multigrid': {'spatial_sizes': [32, 64], 'batch_scaling': 'constant_compute'}}})
    c = TRUE
    by_hand = sum(p.num_iters * (c['fixed_s'] + c['per_frame_s'] * p.batch_size_per_gpu * p.num_frame
                                 + c['per_pixel_s'] * p.batch_size_per_gpu * p.num_frame * p.lq_size ** 2)
                  for p in schedule.phases)
    assert len({p.batch_size_per_gpu for p in schedule.phases}) > 1
    assert cost_model.predict_run(TRUE, schedule) == pytest.approx(by_hand, rel=1e-12)
    as_dicts = [{'iters': p.num_iters, 'batch_size_per_gpu': p.batch_size_per_gpu, 'num_frame': p.num_frame,
                 'lq_size': p.lq_size} for p in schedule.phases]
    assert cost_model.predict_run({'coefficients': TRUE}, as_dicts) == pytest.approx(by_hand, rel=1e-12)


def test_json_round_trips(tmp_path):
    model = synthetic_fit(tiny_options(tmp_path))
    cost_model.save(model, tmp_path / 'fit.json')
    assert cost_model.load(tmp_path / 'fit.json') == model
    assert model['network_g']['type'] == 'BasicVSR' and 'spynet_path' not in model['network_g']


def test_fit_tool_times_a_grid_other_than_the_schedule_and_writes_the_fit(tmp_path):
    opt = tiny_options(tmp_path)
    options = write_options(opt, tmp_path)
    recorded = {'runs': [{'name': 'tiny', 'iters': 4, 'wall_s': 1.0,
                          'phases': [{'iters': 4, 'batch_size_per_gpu': 1, 'num_frame': 4, 'lq_size': 16,
                                      's_per_iter': 0.25}]}]}
    (tmp_path / 'results.json').write_text(json.dumps(recorded))
    out = tmp_path / 'fit.json'
    result = run_tool('benchmark_step', '-opt', options, '--fit', out, '--fit-grid', 'small', '--repeats', 1,
                      '--warmup', 0, '--threads', 1, '--held-out', '--compare', tmp_path / 'results.json')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    model = cost_model.load(out)
    schedule_shapes = {(p.batch_size_per_gpu, p.num_frame, p.lq_size)
                       for p in MultigridSchedule.from_options(opt).phases}
    grid_shapes = {(g['batch'], g['num_frame'], g['lq_size']) for g in model['grid']}
    assert len(grid_shapes) == len(model['grid']) >= 4 and not grid_shapes & schedule_shapes
    assert all(value >= 0 for value in model['coefficients'].values())
    assert model['threads'] == 1 and model['options'] == str(options)  # outside the repository: as given
    assert model['network_g'] == cost_model.network_signature(opt)['network_g']
    assert all(g['s_per_step'] > 0 and g['predicted_s'] == pytest.approx(cost_model.predict_step(
        model, g['batch'], g['num_frame'], g['lq_size'])) for g in model['grid'])
    assert 'fit: s/step = ' in result.stdout and result.stdout.count(' LR') >= 2 * len(model['grid'])
    held_out = {row['run']: row for row in model['held_out']}
    assert set(held_out) == {'schedule', 'baseline'} and held_out['baseline']['shapes'] == [[12, 1, 4, 16]]
    [row] = model['comparison']['runs']
    assert row['predicted_s'] == pytest.approx(4 * cost_model.predict_step(model, 1, 4, 16))
    assert row['measured_compute_s'] == pytest.approx(1.0)


def test_show_schedule_predicts_time_and_speedup_with_the_fit(tmp_path):
    opt = tiny_options(tmp_path)
    options = write_options(opt, tmp_path)
    model = synthetic_fit(opt)
    cost_model.save(model, tmp_path / 'fit.json')
    c = model['coefficients']

    def step(b, t, s):
        return c['fixed_s'] + c['per_frame_s'] * b * t + c['per_pixel_s'] * b * t * s ** 2

    # the tiny schedule by hand: 12 iterations, 70% at LR 8 (4 + 4), 30% at LR 16 (2 + 2), clips of 2 then 4 frames,
    # B1; its baseline: 12 iterations at B1 T4 LR16
    schedule = 4 * (step(1, 2, 8) + step(1, 4, 8)) + 2 * (step(1, 2, 16) + step(1, 4, 16))
    expected_speedup = 12 * step(1, 4, 16) / schedule
    result = run_tool('show_schedule', '-opt', options, '--cost-model', tmp_path / 'fit.json', '--json')
    assert result.returncode == 0, result.stderr
    prediction = json.loads(result.stdout)['cost_model']
    assert prediction['multigrid_s'] == pytest.approx(schedule)
    assert prediction['speedup'] == pytest.approx(expected_speedup)
    table = run_tool('show_schedule', '-opt', options, '--cost-model', tmp_path / 'fit.json')
    assert table.returncode == 0, table.stderr
    assert table.stdout.rstrip().endswith(f'predicted speedup on this machine: {expected_speedup:.2f}x')
    assert f'predicted training time: {schedule:.1f} s' in table.stdout


@pytest.mark.parametrize('fit_name, extra, expected_start', [
    ('missing.json', (), 'error: --cost-model: cannot read '),
    ('corrupt.json', ('--json',), 'error: --cost-model: '),
    ('other.json', (), 'error: --cost-model: '),
    ('edvr.json', ('--json',), 'error: --cost-model: '),
    ('wider.json', (), 'error: --cost-model: '),
], ids=['missing', 'corrupt', 'not-a-fit', 'other-arch', 'other-width'])
def test_bad_cost_model_is_a_one_line_error_and_exit_2(tmp_path, fit_name, extra, expected_start):
    opt = tiny_options(tmp_path)
    options = write_options(opt, tmp_path)
    (tmp_path / 'corrupt.json').write_text('{"kind": "step_cost_model", "coeff')
    (tmp_path / 'other.json').write_text(json.dumps({'runs': []}))
    edvr = synthetic_fit(opt)
    edvr['network_g'] = dict(edvr['network_g'], type='EDVR')
    cost_model.save(edvr, tmp_path / 'edvr.json')
    wider = synthetic_fit(opt)
    wider['network_g'] = dict(wider['network_g'], num_feat=64)
    cost_model.save(wider, tmp_path / 'wider.json')
    result = run_tool('show_schedule', '-opt', options, '--cost-model', tmp_path / fit_name, *extra)
    assert result.returncode == 2 and result.stdout == ''
    assert result.stderr.startswith(expected_start) and result.stderr.count('\n') == 1, result.stderr
    if fit_name == 'edvr.json':
        assert 'is a fit for EDVR, the option file trains BasicVSR' in result.stderr
    if fit_name == 'wider.json':
        assert 'network_g.num_feat differs' in result.stderr


def test_speedup_comparison_is_the_ratio_of_seed_means():
    rows = [{'run': 'base', 'predicted_s': 10.0, 'measured_compute_s': 20.0},
            {'run': 'base', 'predicted_s': 10.0, 'measured_compute_s': 24.0},
            {'run': 'mg', 'predicted_s': 4.0, 'measured_compute_s': 10.0}]
    [row] = cost_model.compare_speedups(rows)
    assert (row['run'], row['over']) == ('mg', 'base')
    assert row['predicted_speedup'] == pytest.approx(2.5) and row['measured_speedup'] == pytest.approx(2.2)
