"""tools/show_schedule.py as a user runs it: the JSON and the table, one-line errors."""
import json

import pytest
import yaml

from tests.conftest import run_tool

PHASE_KEYS = ['start_iter', 'end_iter', 'lq_size', 'gt_size', 'num_frame', 'batch_size_per_gpu', 'lr_factor']


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
    assert list(summary) == ['phases', 'predicted_speedup']
    assert all(list(phase) == PHASE_KEYS for phase in summary['phases'])
    assert [(p['lq_size'], p['num_frame']) for p in summary['phases']] == [
        (32, 7), (32, 11), (32, 15), (64, 7), (64, 11), (64, 15)]
    assert summary['phases'][0] == {'start_iter': 0, 'end_iter': 50000, 'lq_size': 32, 'gt_size': 128,
                                    'num_frame': 7, 'batch_size_per_gpu': 2, 'lr_factor': 1.0}
    assert summary['predicted_speedup'] == pytest.approx(2.1818, abs=1e-4)


def test_table_output_ends_with_the_speedup(tmp_path):
    result = run_tool('show_schedule', '-opt', write_options(tmp_path, {}))
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith('predicted speedup over fixed-shape baseline: 2.18x')


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
