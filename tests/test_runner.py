"""The runner trains stock BasicSR models as basicsr's own `train_pipeline` does: same losses and LRs at every
iteration for a VideoRecurrentModel on basicsr's REDSRecurrentDataset (BasicSR's warmup and a chainable
scheduler included), the run records read back what the network received, and each validated iteration is
recorded once."""
import os
import re
import subprocess
import sys

import pytest

from basicsr_multigrid.training.recorder import batch_shape
from tests.conftest import (REPO_ROOT, TRAIN_COMMAND, build_demo_data, recorded, run_training,
                            tiny_multigrid_options, write_options)

pytestmark = pytest.mark.slow
LOG_LINE = re.compile(r'iter:\s*(\d+), lr:\(([^)]*)\).*l_pix: (\S+)')
# basicsr's own loop, after this package's repairs and registrations, experiments under argv[1]
BASICSR_CODE = ('import sys; import basicsr_multigrid, basicsr.train; root = sys.argv[1]; '
                'sys.argv = ["train.py"] + sys.argv[2:]; basicsr.train.train_pipeline(root)')


@pytest.fixture(scope='module')
def reds_like_data(tmp_path_factory):
    """100-frame clips, the length basicsr's REDSRecurrentDataset assumes, at 32 px GT."""
    return build_demo_data(tmp_path_factory, 'reds_like', size=32, train_frames=100, val_frames=2, seed=1)


def stock_options(data, name):
    return {
        'name': name, 'model_type': 'VideoRecurrentModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 7,
        'datasets': {'train': {
            'name': 'reds_like', 'type': 'REDSRecurrentDataset', 'dataroot_gt': f'{data}/train/GT',
            'dataroot_lq': f'{data}/train/LQ', 'meta_info_file': f'{data}/meta_info_train.txt',
            'val_partition': 'REDS4', 'test_mode': False, 'io_backend': {'type': 'disk'}, 'num_frame': 4,
            'gt_size': 32, 'interval_list': [1, 2], 'random_reverse': True, 'use_hflip': True, 'use_rot': True,
            'num_worker_per_gpu': 0, 'batch_size_per_gpu': 2, 'dataset_enlarge_ratio': 1, 'prefetch_mode': None}},
        'network_g': {'type': 'BasicVSR', 'num_feat': 4, 'num_block': 1, 'spynet_path': None},
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
                  'scheduler': {'type': 'MultiStepRestartLR', 'milestones': [5], 'gamma': 0.5},
                  'total_iter': 8, 'warmup_iter': 4, 'flow_lr_mul': 0.5,
                  'pixel_opt': {'type': 'CharbonnierLoss', 'loss_weight': 1.0, 'reduction': 'mean'}},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 100, 'use_tb_logger': False},
        'dist_params': {'backend': 'gloo', 'port': 29500},
    }


def console_steps(stdout):
    """{iter: (lrs, l_pix)} as printed (lr to 4 digits, loss to 5)."""
    return {int(it): (lrs, loss) for it, lrs, loss in LOG_LINE.findall(stdout)}


def run(command, root, opt_path):
    result = subprocess.run([*command, str(root), '-opt', opt_path], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600,
                            env=dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore'))
    assert result.returncode == 0, result.stdout[-4000:]
    return result.stdout


def test_stock_video_model_logs_the_same_losses_and_lrs_as_basicsr_train_pipeline(reds_like_data, tmp_path):
    opt_path = write_options(stock_options(reds_like_data, 'stock'), tmp_path)
    theirs = console_steps(run([sys.executable, '-c', BASICSR_CODE], tmp_path / 'basicsr', opt_path))
    ours_stdout = run(TRAIN_COMMAND, tmp_path / 'runner', opt_path)
    ours = console_steps(ours_stdout)
    assert sorted(theirs) == list(range(1, 9))
    assert ours == theirs
    lrs = [float(theirs[it][0].split(',')[0]) for it in range(1, 9)]
    # BasicSR's warmup (1/4, 2/4, 3/4 of 1e-3), then the scheduler continues from the last warmup LR and halves
    assert lrs == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 7.5e-4, 7.5e-4, 3.75e-4, 3.75e-4, 3.75e-4], rel=1e-3)
    records = recorded(tmp_path / 'runner', 'stock').iterations
    assert [r['iter'] for r in records] == list(range(1, 9))
    assert all((r['batch'], r['num_frame'], r['lq_size']) == (2, 4, 8) and 'phase' not in r for r in records)
    assert [f"{r['l_pix']:.4e}" for r in records] == [theirs[it][1] for it in range(1, 9)]


def test_batch_shape_reads_the_tensor_itself():
    import torch
    assert batch_shape(torch.zeros(3, 7, 3, 16, 20)) == (3, 7, 20)
    assert batch_shape(torch.zeros(3, 3, 16, 16)) == (3, None, 16)
    assert batch_shape(None) == (None, None, None)


@pytest.mark.parametrize('val_freq, validated_iters', [
    (6, [6, 12]),  # the periodic validation of iteration 12 is the last one: it is not repeated
    (5, [5, 10, 12]),  # the last iteration is validated after the loop
])
def test_each_validated_iteration_is_recorded_once_per_dataset(demo_data, tmp_path, val_freq, validated_iters):
    name = f'every_{val_freq}'
    # the EMA and the training weights: two datasets per validation
    opt = tiny_multigrid_options(demo_data, name, val__val_freq=val_freq, train__ema_decay=0.5, val__ema='both')
    run_training(tmp_path, write_options(opt, tmp_path))
    for dataset in ('demo_val', 'demo_val_net_g'):
        assert [r['iter'] for r in recorded(tmp_path, name).validations_of(dataset)] == validated_iters
