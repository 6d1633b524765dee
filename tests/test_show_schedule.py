"""Tests for tools/show_schedule.py, in-process through main() and once as a real subprocess."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest
import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL_PATH = os.path.join(REPO_ROOT, 'tools', 'show_schedule.py')
PHASE_KEYS = ['start_iter', 'end_iter', 'lq_size', 'gt_size', 'num_frame', 'batch_size_per_gpu', 'lr_factor']


def load_tool():
    spec = importlib.util.spec_from_file_location('show_schedule', TOOL_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def show_schedule():
    return load_tool()


def write_options(tmp_path, multigrid):
    options = {
        'scale': 4,
        'datasets': {'train': {'num_frame': 15, 'gt_size': 256, 'batch_size_per_gpu': 2}},
        'train': {'total_iter': 300000, 'multigrid': multigrid},
    }
    path = tmp_path / 'options.yml'
    path.write_text(yaml.safe_dump(options))
    return str(path)


def test_json_output_has_exactly_the_documented_keys(show_schedule, tmp_path, capsys):
    option_path = write_options(tmp_path, {'spatial_sizes': [32, 64]})
    assert show_schedule.main(['-opt', option_path, '--json']) == 0
    summary = json.loads(capsys.readouterr().out)
    assert list(summary) == ['phases', 'predicted_speedup']
    assert all(list(phase) == PHASE_KEYS for phase in summary['phases'])
    assert [(p['lq_size'], p['num_frame']) for p in summary['phases']] == [
        (32, 7), (32, 11), (32, 15), (64, 7), (64, 11), (64, 15)]
    assert summary['phases'][0] == {'start_iter': 0, 'end_iter': 50000, 'lq_size': 32, 'gt_size': 128,
                                    'num_frame': 7, 'batch_size_per_gpu': 2, 'lr_factor': 1.0}
    assert summary['predicted_speedup'] == pytest.approx(2.1818, abs=1e-4)


def test_table_output_ends_with_the_speedup(show_schedule, tmp_path, capsys):
    assert show_schedule.main(['-opt', write_options(tmp_path, {})]) == 0
    assert capsys.readouterr().out.rstrip().endswith('predicted speedup over fixed-shape baseline: 2.18x')


@pytest.mark.parametrize('make_path, expected_start', [
    (lambda tmp_path: write_options(tmp_path, {'spatial_size': [32, 64]}), 'error: train.multigrid.spatial_size: '),
    (lambda tmp_path: str(tmp_path / 'missing.yml'), 'error: -opt: cannot read '),
])
def test_errors_print_one_line_and_exit_2(show_schedule, tmp_path, capsys, make_path, expected_start):
    assert show_schedule.main(['-opt', make_path(tmp_path), '--json']) == 2
    captured = capsys.readouterr()
    assert captured.out == ''
    assert captured.err.startswith(expected_start) and captured.err.count('\n') == 1


def test_malformed_yaml_is_a_one_line_error(show_schedule, tmp_path, capsys):
    path = tmp_path / 'broken.yml'
    path.write_text('train: [unclosed\n  total_iter: 3\n')
    assert show_schedule.main(['-opt', str(path)]) == 2
    assert capsys.readouterr().err.count('\n') == 1


def test_runs_as_a_script_from_the_repo_root(tmp_path):
    """One real process (it imports torch via the package): exit code 2 and a single line, no traceback."""
    option_path = write_options(tmp_path, {'spatial_size': [32, 64]})
    result = subprocess.run([sys.executable, 'tools/show_schedule.py', '-opt', option_path, '--json'],
                            cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stdout == ''
    assert result.stderr.startswith('error: train.multigrid.spatial_size: unknown option')
    assert result.stderr.count('\n') == 1
