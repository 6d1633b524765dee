"""tools/show_schedule.py as a user runs it: the JSON and the table, one-line errors."""
import json

import pytest
import yaml

from tests.conftest import run_tool

PHASE_KEYS = ['start_iter', 'end_iter', 'lq_size', 'gt_size', 'num_frame', 'batch_size_per_gpu', 'lr_factor',
              'num_iters', 'num_clips', 'relative_cost']


def write_options(tmp_path, multigrid):
    options = {
        'scale': 4,
        'datasets': {'train': {'num_frame': 15, 'gt_size': 256, 'batch_size_per_gpu': 2}},
        'train': {'total_iter': 300000, 'multigrid': multigrid},
    }
    path = tmp_path / 'options.yml'
    path.write_text(yaml.safe_dump(options))
    return str(path)


def test_json_output_has_exactly_the_documented_keys(tmp_path):
    result = run_tool('show_schedule', '-opt', write_options(tmp_path, {'spatial_sizes': [32, 64]}), '--json')
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert list(summary) == ['phases', 'predicted_speedup', 'total_iter', 'options_total_iter', 'total_clips']
    assert summary['total_iter'] == summary['options_total_iter'] == 300000 and summary['total_clips'] == 600000
    assert all(list(phase) == PHASE_KEYS for phase in summary['phases'])
    assert [(p['lq_size'], p['num_frame']) for p in summary['phases']] == [
        (32, 7), (32, 11), (32, 15), (64, 7), (64, 11), (64, 15)]
    assert summary['phases'][0] == {'start_iter': 0, 'end_iter': 50000, 'lq_size': 32, 'gt_size': 128,
                                    'num_frame': 7, 'batch_size_per_gpu': 2, 'lr_factor': 1.0,
                                    'num_iters': 50000, 'num_clips': 100000, 'relative_cost': pytest.approx(7 / 60)}
    assert summary['predicted_speedup'] == pytest.approx(2.1818, abs=1e-4)


def test_table_output_ends_with_the_speedup(tmp_path):
    result = run_tool('show_schedule', '-opt', write_options(tmp_path, {}))
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith('predicted speedup over fixed-shape baseline: 2.18x')


def test_sample_budget_json_and_table_show_iterations_batch_clips_and_cost(tmp_path):
    path = write_options(tmp_path, {'spatial_sizes': [32, 64], 'batch_scaling': 'constant_compute'})
    summary = json.loads(run_tool('show_schedule', '-opt', path, '--json').stdout)
    # B = round(2 x 15 x 64^2 / (T x S^2)); each phase gets a sixth of the 600000 clips
    assert [p['batch_size_per_gpu'] for p in summary['phases']] == [17, 11, 8, 4, 3, 2]
    assert [p['num_clips'] for p in summary['phases']] == [99994, 100001, 100000, 100000, 99999, 100000]
    assert [p['num_iters'] for p in summary['phases']] == [5882, 9091, 12500, 25000, 33333, 50000]
    assert summary['total_iter'] == sum(p['num_iters'] for p in summary['phases']) < summary['options_total_iter']
    assert all(abs(p['relative_cost'] - 1) < 0.2 for p in summary['phases'])  # batch rounding: 3 for 2.73
    table = run_tool('show_schedule', '-opt', path).stdout.splitlines()
    header = table[0].split()
    assert all(name in header for name in ('iters', 'batch/gpu', 'clips/gpu', 'cost/iter'))
    row = dict(zip(['phase', 'stage', 'range', 'iters', 'lq_size', 'gt_size', 'num_frame', 'batch/gpu', 'clips/gpu',
                    'lr_factor', 'cost/iter', 'compute'], table[1].split()))
    assert (row['iters'], row['batch/gpu'], row['clips/gpu'], row['cost/iter']) == ('5882', '17', '99994', '0.992')
    assert table[-2] == f"iterations: {summary['total_iter']} (options: 300000), clips/gpu: 599994 (options: 600000)"


@pytest.mark.parametrize('make_path, expected_start', [
    (lambda tmp_path: write_options(tmp_path, {'spatial_size': [32, 64]}), 'error: train.multigrid.spatial_size: '),
    (lambda tmp_path: str(tmp_path / 'missing.yml'), 'error: -opt: cannot read '),
])
def test_errors_print_one_line_and_exit_2(tmp_path, make_path, expected_start):
    result = run_tool('show_schedule', '-opt', make_path(tmp_path), '--json')
    assert result.returncode == 2 and result.stdout == ''
    assert result.stderr.startswith(expected_start) and result.stderr.count('\n') == 1


def test_malformed_yaml_is_a_one_line_error(tmp_path):
    path = tmp_path / 'broken.yml'
    path.write_text('train: [unclosed\n  total_iter: 3\n')
    result = run_tool('show_schedule', '-opt', path)
    assert result.returncode == 2 and result.stderr.count('\n') == 1
