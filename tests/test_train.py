"""Real training runs through the runner of a tiny BasicVSR on the demo data, on CPU: learning, validation, resume."""
import os
import re
import subprocess
import sys
from os import path as osp

import pytest

from tests.conftest import REPO_ROOT, demo_options, recorded, run_training, write_options

def tiny_options(demo_data, name, **overrides):
    settings = dict(name=name, network_g__num_feat=8, network_g__num_block=1, datasets__train__gt_size=64,
                    datasets__train__num_frame=3, datasets__train__batch_size_per_gpu=2,
                    datasets__train__num_worker_per_gpu=1, train__total_iter=12, train__scheduler__periods=[12],
                    val__val_freq=6, logger__print_freq=1, logger__save_checkpoint_freq=6)
    settings.update(overrides)
    return demo_options(demo_data, **settings)


def logged_iterations(records):
    """{iter: (lrs, l_pix)} from the run's train log."""
    return {r['iter']: (r['lrs'], r['l_pix']) for r in records}


@pytest.mark.slow
def test_training_learns_and_validates_on_cpu(demo_data, tmp_path):
    opt = tiny_options(demo_data, 'learns', train__total_iter=40, train__scheduler__periods=[40],
                       train__optim_g__lr=3e-3, val__val_freq=10, logger__save_checkpoint_freq=40)
    run_training(tmp_path, write_options(opt, tmp_path))
    run = recorded(tmp_path, 'learns')
    logged = logged_iterations(run.iterations)
    assert sorted(logged) == list(range(1, 41))  # total_iter honoured exactly
    losses = [logged[it][1] for it in sorted(logged)]
    assert sum(losses[-10:]) < sum(losses[:10])
    records = run.validations
    assert [r['iter'] for r in records] == [10, 20, 30, 40]  # the last one is the final validation too
    assert all(r['dataset'] == 'demo_val' and 0 < r['ssim'] <= 1 for r in records)
    assert records[-1]['psnr'] > records[0]['psnr'] + 0.1, [r['psnr'] for r in records]
    assert (tmp_path / 'experiments' / 'learns' / 'models' / 'net_g_latest.pth').is_file()


@pytest.mark.slow
def test_auto_resume_continues_at_the_saved_iteration_with_the_same_lr(demo_data, tmp_path):
    opt_path = write_options(tiny_options(demo_data, 'resume'), tmp_path)
    run_training(tmp_path, opt_path)
    uninterrupted = logged_iterations(recorded(tmp_path, 'resume').iterations)
    states = tmp_path / 'experiments' / 'resume' / 'training_states'
    assert sorted(os.listdir(states)) == ['12.state', '6.state']
    os.remove(states / '12.state')  # as if killed after the checkpoint at iteration 6

    other_cwd = tmp_path / 'elsewhere'
    other_cwd.mkdir()
    resumed_run = run_training(tmp_path, opt_path, '--auto_resume', cwd=str(other_cwd))
    assert 'Resuming training from epoch: 0, iter: 6.' in resumed_run.stdout
    resumed = logged_iterations(r for r in recorded(tmp_path, 'resume').iterations if r['iter'] > 6)
    assert sorted(resumed) == list(range(7, 13))
    assert {it: lrs for it, (lrs, _) in resumed.items()} == {it: uninterrupted[it][0] for it in range(7, 13)}


@pytest.mark.slow
def test_train_script_command_line(demo_data, tmp_path):
    """`python basicsr_multigrid/train.py -opt X.yml --debug` as users type it (experiments go to the repo root)."""
    name = f'pytest_cli_{os.getpid()}'
    opt_path = write_options(tiny_options(demo_data, name, train__total_iter=2, train__scheduler__periods=[2]),
                             tmp_path)
    experiment = osp.join(REPO_ROOT, 'experiments', f'debug_{name}')
    try:
        result = subprocess.run([sys.executable, 'basicsr_multigrid/train.py', '-opt', opt_path, '--debug'],
                                cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        assert osp.isfile(osp.join(experiment, 'models', 'net_g_latest.pth'))
    finally:
        import shutil
        shutil.rmtree(experiment, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize('launcher_arg', ['--local-rank=0'])
def test_local_rank_spelling_from_torch_launch_is_accepted(demo_data, tmp_path, launcher_arg):
    opt_path = write_options(tiny_options(demo_data, 'local_rank', train__total_iter=1,
                                          train__scheduler__periods=[1]), tmp_path)
    run_training(tmp_path, opt_path, launcher_arg)


@pytest.mark.slow
def test_rerunning_an_experiment_name_archives_the_old_run_instead_of_overwriting(demo_data, tmp_path):
    opt = tiny_options(demo_data, 'again', train__total_iter=1, train__scheduler__periods=[1])
    opt_path = write_options(opt, tmp_path)
    run_training(tmp_path, opt_path)
    first_weights = (tmp_path / 'experiments' / 'again' / 'models' / 'net_g_latest.pth').read_bytes()
    run_training(tmp_path, opt_path)
    archived = [p for p in (tmp_path / 'experiments').iterdir() if p.name.startswith('again_archived_')]
    assert len(archived) == 1
    assert (archived[0] / 'models' / 'net_g_latest.pth').read_bytes() == first_weights


@pytest.mark.slow
@pytest.mark.parametrize('model_type', ['MultigridVideoRecurrentModel', 'DistilledVideoRecurrentModel'])
def test_test_pipeline_evaluates_trained_weights_on_cpu(demo_data, tmp_path, model_type):
    """`test.py`: basicsr's test pipeline with this package's models and any-name validation dataset."""
    opt = tiny_options(demo_data, 'for_testing', train__total_iter=2, train__scheduler__periods=[2])
    run_training(tmp_path, write_options(opt, tmp_path))
    weights = tmp_path / 'experiments' / 'for_testing' / 'models' / 'net_g_latest.pth'
    test_opt = {'name': 'tested', 'model_type': model_type, 'scale': 4, 'num_gpu': 0,
                'datasets': {'test_1': dict(opt['datasets']['val'], name='my_clips')},
                'network_g': opt['network_g'], 'path': {'pretrain_network_g': str(weights), 'strict_load_g': True},
                'val': {'save_img': False, 'metrics': opt['val']['metrics']}}
    test_opt_path = write_options(test_opt, tmp_path, 'test.yml')
    code = ('import sys; from basicsr_multigrid.training.cli import test_pipeline; '
            'test_pipeline(sys.argv[1], argv=["test.py", "-opt", sys.argv[2]])')
    result = subprocess.run([sys.executable, '-c', code, str(tmp_path), test_opt_path], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    psnr = float(re.search(r'Validation my_clips\s+# psnr: ([0-9.]+)', result.stdout).group(1))
    assert 15 < psnr < 50
    assert (tmp_path / 'results' / 'tested').is_dir()


@pytest.mark.slow
@pytest.mark.parametrize('entry', ['train.py', 'test.py'])
def test_entry_points_print_usage_with_h(entry):
    result = subprocess.run([sys.executable, f'basicsr_multigrid/{entry}', '-h'], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith('usage:') and all(flag in result.stdout for flag in
                                                      ('-opt', '--launcher', '--auto_resume', '--debug', '--force_yml'))
