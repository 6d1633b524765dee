"""Exact resume after SIGKILL, atomic weights_only checkpoints, skipping truncated states, data faults, and a
table of bad inputs that must stop before anything on disk changes."""
import os
import re
import shutil
import subprocess
import sys
from os import path as osp

import pytest
import torch

from basicsr_multigrid.data.multigrid_paired_video_dataset import MultigridPairedVideoDataset
from basicsr_multigrid.data.video_frames import VideoDataError
from basicsr_multigrid.multigrid.sampler import ShapedIndex
from basicsr_multigrid.training.cli import run_cli
from basicsr_multigrid.training.runner import train_pipeline
from basicsr_multigrid.utils.atomic_io import atomic_torch_save
from basicsr_multigrid.utils.checkpoint import latest_training_state
from tests.conftest import (REPO_ROOT, final_weights, run_training, recorded, steps, tiny_multigrid_options,
                            train_dataset_options, train_until, tree_digest, write_options)


def kill_options(demo_data, name):
    return tiny_multigrid_options(demo_data, name, train__total_iter=24, train__scheduler__periods=[24],
                                  logger__save_checkpoint_freq=4, val__val_freq=12)


@pytest.mark.slow
def test_sigkill_at_a_phase_boundary_and_during_validation_then_auto_resume_is_exact(demo_data, tmp_path):
    opt = kill_options(demo_data, 'killed')
    opt_path = write_options(opt, tmp_path)
    train_until(tmp_path / 'reference', opt_path)
    reference = steps(recorded(tmp_path / 'reference', 'killed').iterations)

    root = tmp_path / 'interrupted'
    train_until(root, opt_path, 'Multigrid phase 3/6')  # killed as phase 3 (iteration 9) begins
    second = train_until(root, opt_path, 'iter:      12,', '--auto_resume')  # then at the validation of iter 12
    last = train_until(root, opt_path, None, '--auto_resume')
    assert 'Resuming training from epoch' in second and 'Resuming training from epoch' in last
    logged = steps(recorded(root, 'killed').iterations)  # all three runs (each resume replaced what it redid)
    assert sorted(logged) == list(range(1, 25))
    assert logged == reference  # same LR, phase, stage, lq_size, num_frame and batch at every iteration
    for key, value in final_weights(tmp_path / 'reference', 'killed').items():
        torch.testing.assert_close(final_weights(root, 'killed')[key], value, rtol=0, atol=1e-6)
    states = osp.join(root, 'experiments', 'killed', 'training_states')
    for name in os.listdir(states):
        state = torch.load(osp.join(states, name), weights_only=True)  # tensors and primitives only
        assert set(state) == {'epoch', 'iter', 'optimizers', 'schedulers', 'rng'}
    assert not [n for n in os.listdir(osp.dirname(states)) if '.tmp' in n]


def make_checkpoints(experiment, iters):
    for folder in ('training_states', 'models'):
        os.makedirs(osp.join(experiment, folder), exist_ok=True)
    for it in iters:
        atomic_torch_save({'iter': it, 'epoch': 0, 'optimizers': [], 'schedulers': []},
                          osp.join(experiment, 'training_states', f'{it}.state'))
        atomic_torch_save({'params': {'w': torch.full((64, 64), float(it))}},
                          osp.join(experiment, 'models', f'net_g_{it}.pth'))


@pytest.mark.parametrize('broken', ['training_states/8.state', 'models/net_g_8.pth'])
def test_truncated_newest_checkpoint_is_skipped_with_a_warning(tmp_path, broken):
    experiment = str(tmp_path / 'experiments' / 'run')
    make_checkpoints(experiment, [4, 8])
    path = osp.join(experiment, broken)
    with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.warns(UserWarning, match=f'auto_resume: skipping iteration 8: {path} is unusable'):
        assert latest_training_state(experiment) == osp.join(experiment, 'training_states', '4.state')


def test_bad_frame_errors_by_default_and_is_skipped_and_counted_when_asked(demo_data, tmp_path):
    root = str(tmp_path / 'data')
    shutil.copytree(demo_data, root)
    clip = sorted(os.listdir(osp.join(root, 'train', 'GT')))[0]
    bad = osp.join(root, 'train', 'GT', clip, '00000002.png')
    with open(bad, 'wb') as f:
        f.write(b'\x89PNG truncated')
    strict = MultigridPairedVideoDataset(train_dataset_options(root, num_frame=4, gt_size=32))
    with pytest.raises(VideoDataError, match=f'^cannot decode frame {bad}$'):
        strict[ShapedIndex(0, 4, 32, seed=0)]
    lenient = MultigridPairedVideoDataset(train_dataset_options(root, num_frame=4, gt_size=32, on_bad_frame='skip'))
    item = lenient[ShapedIndex(0, 4, 32, seed=0)]
    assert item['skipped'] >= 1 and item['key'].split('/')[0] == clip and item['gt'].shape == (4, 3, 32, 32)
    assert lenient[ShapedIndex(40, 4, 32, seed=0)]['skipped'] == 0


# ------------------------------------------------------------------------------------------------ bad inputs

def set_key(opt, dotted, value):
    *parents, last = dotted.split('.')
    node = opt
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value


class _Delete:
    """Marks a key to remove; a stable name, so that test ids agree between pytest-xdist workers."""

    def __repr__(self):
        return 'DELETE'


DELETE = _Delete()
BAD_INPUTS = [  # (dotted key, value, expected text in the one-line error)
    ('logger.print_freq', 0, 'logger.print_freq: must be a positive integer, got 0'),
    ('logger.save_checkpoint_freq', DELETE, 'logger.save_checkpoint_freq: must be a positive integer, got None'),
    ('datasets.train.prefetch_mode', 'gpu', "datasets.train.prefetch_mode: 'gpu' is not one of ~, cpu, cuda"),
    ('datasets.train.prefetch_mode', 'cuda', 'datasets.train.pin_memory: must be true with prefetch_mode: cuda'),
    ('datasets.train.gt_size', 66, 'datasets.train.gt_size: 66 is not divisible by scale 4'),
    ('datasets.train.num_frame', 50, 'datasets.train.num_frame'),
    ('datasets.train.gt_szie', 64, 'datasets.train.gt_szie: unknown option of MultigridPairedVideoDataset; '
                                   'did you mean gt_size?'),
    ('datasets.train.dataroot_gt', '/nonexistent/GT', 'datasets.train.dataroot_gt: not found: /nonexistent/GT'),
    ('datasets.train.dataroot_lq', '/nonexistent/LQ', 'datasets.train.dataroot_lq: not found: /nonexistent/LQ'),
    ('datasets.train.meta_info_file', '/nonexistent/meta.txt', 'meta_info_file: file not found: /nonexistent/meta.txt'),
    ('datasets.train.io_backend', {'type': 'hdf5'}, "io_backend.type: 'hdf5' is not supported"),
    ('datasets.train.on_bad_frame', 'ignore', "datasets.train.on_bad_frame: 'ignore' is not one of error, skip"),
    ('datasets.train.type', 'NoSuchDataset', "datasets.train.type: no dataset named 'NoSuchDataset'"),
    ('datasets.val.dataroot_gt', '/nonexistent/val', 'datasets.val.dataroot_gt: folder not found: /nonexistent/val'),
    ('train.multigrid.spatial_sizes', [8, 64], 'train.multigrid.spatial_sizes'),
    ('train.multigrid.spatial_sizes', [16, 8], 'train.multigrid.spatial_sizes'),
    ('train.multigrid.spatial_size', [8, 16], 'train.multigrid.spatial_size'),
    ('train.multigrid.temporal_fractions', [0.5, 1.5], 'train.multigrid.temporal_fractions'),
    ('train.multigrid.stage_split', [0.3, 0.3], 'train.multigrid.stage_split'),
    ('train.multigrid.phase_split', 'weird', 'train.multigrid.phase_split'),
    ('train.multigrid.stage_lr_factors', [2], 'train.multigrid.stage_lr_factors'),
    ('train.multigrid.batch_scaling', 'double', 'train.multigrid.batch_scaling'),
    ('train.total_iter', 4, 'train.total_iter: 4 iterations cannot cover 6 multigrid phases'),
    ('train.total_iter', 'many', 'train.total_iter'),
    ('datasets.train.batch_size_per_gpu', 0, 'datasets.train.batch_size_per_gpu'),
    ('train.hooks', [{'type': 'NoSuchHook'}], "train.hooks[0].type: unknown hook 'NoSuchHook'"),
    ('train.hooks', [{'type': 'LinearWarmupHook', 'warmup_iter': 0}], 'train.hooks.LinearWarmupHook.warmup_iter'),
    ('train.hooks', [{'type': 'LinearWarmupHook', 'warmup': 5}], 'train.hooks[0] (LinearWarmupHook)'),
    ('train.hooks', [{'type': 'RankConsistencyHook', 'interval': 0}], 'train.hooks.RankConsistencyHook.interval'),
    ('path.resume_state', '/nonexistent/4.state', 'path.resume_state: no such file /nonexistent/4.state'),
    ('manual_seed', DELETE, 'manual_seed: not set; without it every rank and every resumed run draws its own seed'),
    ('num_gpu', 8, 'num_gpu: 8 without a launcher runs one process on one GPU (global batch 2, not x8)'),
    ('train.warmup_iter', 4, 'train.warmup_iter: 4 and train.hooks[0] (LinearWarmupHook) both warm up the LR'),
    ('train.precision', 'fp8', "train.precision: 'fp8' is not one of fp32, bf16, fp16"),
    ('train.precision', 'fp16', 'train.precision: fp16 needs a CUDA device'),
    ('train.fp32_modules', ['flownet'], 'train.fp32_modules: only meaningful with train.precision bf16 or fp16'),
    ('train.on_divergence', 'retry', "train.on_divergence: 'retry' is not one of stop, rollback"),
    ('train.rollback_lr_factor', 2, 'train.rollback_lr_factor: must be a number between 0 and 1 (exclusive), got 2'),
    ('train.stop_signals', ['SIGFOO'], 'train.stop_signals: SIGFOO is not a signal this process can catch'),
    ('dist_params.timeout', 0, 'dist_params.timeout: expected a positive number of seconds, got 0'),
]


@pytest.fixture(scope='module')
def existing_experiment(tmp_path_factory):
    """A project root holding an earlier run of the same name, with checkpoints that must survive."""
    root = tmp_path_factory.mktemp('project')
    make_checkpoints(str(root / 'experiments' / 'bad'), [4, 8])
    return root


@pytest.mark.parametrize('dotted, value, expected', BAD_INPUTS, ids=[f'{k}={v}' for k, v, _ in BAD_INPUTS])
def test_bad_input_stops_with_one_line_before_touching_disk(demo_data, existing_experiment, tmp_path, capsys,
                                                            dotted, value, expected):
    opt = tiny_multigrid_options(demo_data, 'bad')
    set_key(opt, dotted, value)
    assert_stops_before_touching_disk(opt, expected, existing_experiment, tmp_path, capsys)


def test_a_summed_loss_with_channel_sparsity_stops_before_touching_disk(demo_data, existing_experiment, tmp_path,
                                                                          capsys):
    opt = tiny_multigrid_options(demo_data, 'bad',
                                 train__optim_g={'type': 'OBProxSG', 'lr': 1e-3, 'sparsity': 'channel'})
    opt['train']['pixel_opt']['reduction'] = 'sum'
    assert_stops_before_touching_disk(opt, 'train.pixel_opt.reduction: sum with OBProxSG channel sparsity makes '
                                      'lambda_ depend on the batch and patch size; use reduction: mean',
                                      existing_experiment, tmp_path, capsys)


def assert_stops_before_touching_disk(opt, expected, existing_experiment, tmp_path, capsys):
    opt_path = write_options(opt, tmp_path)
    before = tree_digest(existing_experiment)
    with pytest.raises(SystemExit) as stopped:
        run_cli(lambda root: train_pipeline(root, ['train.py', '-opt', opt_path]),
                         str(existing_experiment))
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith('error: ') and expected in err[-1], err
    assert tree_digest(existing_experiment) == before
    assert sorted(os.listdir(existing_experiment)) == ['experiments']
    assert os.listdir(existing_experiment / 'experiments') == ['bad']


def test_bad_yaml_is_one_line_too(tmp_path):
    opt_path = tmp_path / 'broken.yml'
    opt_path.write_text('name: x\ntrain: [unclosed\n')
    result = subprocess.run([sys.executable, 'basicsr_multigrid/train.py', '-opt', str(opt_path)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f'error: {opt_path}: ')


@pytest.mark.slow
def test_absurd_learning_rate_stops_with_one_line_instead_of_crashing(demo_data, tmp_path):
    """LR 1e30 made the second step's flow NaN and grid_sample's backward segfaulted (exit 139); now the
    non-finite steps are skipped and the run stops after train.max_bad_steps of them, exit status 3."""
    opt = tiny_multigrid_options(demo_data, 'diverged', train__optim_g__lr=1e30, train__max_bad_steps=3,
                                 train__hooks=[])
    result = run_training(tmp_path, write_options(opt, tmp_path), check=False)
    assert result.returncode == 3, result.stdout[-3000:]
    last = result.stdout.strip().splitlines()[-1]
    assert re.match(r'error: train.max_bad_steps: 3 steps in a row with a non-finite value, the last at iteration '
                    r'\d+ \(l_pix = nan\)', last), last
    assert 'update skipped (1 in a row, 1 in all)' in result.stdout


def test_benchmark_runs_on_several_gpus_start_one_process_per_gpu():
    from basicsr_multigrid.benchmarks.runs import training_command
    run = ['/w', '-opt', '/w/a.yml']
    assert training_command({'num_gpu': 1}, '/w', '/w/a.yml') == [sys.executable, '-m', 'basicsr_multigrid.training',
                                                                   *run]
    command = training_command({'num_gpu': 8}, '/w', '/w/a.yml')
    assert command == [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=8', '-m',
                       'basicsr_multigrid.training', *run, '--launcher', 'pytorch']
