"""The benchmarks' training runs: each in a fresh process (`python -m basicsr_multigrid.training`), reused when an
earlier invocation finished the same run, and the option builders of their variants (benchmark logging, large
batch, tuning grid, precision twins, seeds, another data folder, the data's test split)."""
import argparse
import copy
import os
import subprocess
import sys
import time
from os import path as osp

import torch
import yaml

from basicsr_multigrid.utils.option_file import read_option_file

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAINING_MODULE = 'basicsr_multigrid.training'
SINGLE_PROCESS_IRRELEVANT = ('find_unused_parameters', )  # DDP-only: a run that differs only here is the same run
DEFAULT_WARMUP_FRACTION = 0.05


def load_options(path):
    """A shipped option file (`path` relative to the repository) or the user's own."""
    return read_option_file(path if osp.isabs(path) else osp.join(REPO_ROOT, path))


def portable_path(path, work_dir):
    """How a results file names `path`: relative to the benchmark's work directory when inside it, else relative to
    the repository when inside it (so that the file reads the same whatever machine made it), else as given."""
    absolute = osp.abspath(path)
    for base in (work_dir, REPO_ROOT):
        relative = osp.relpath(absolute, osp.abspath(base))
        if not relative.startswith(os.pardir):
            return relative
    return path


def train_in_subprocess(opt, work_dir, log_file):
    """One training run in a fresh process, its folders under work_dir; returns the experiment folder. The options
    are written to `<work_dir>/<name>.yml`."""
    opt_path = osp.join(work_dir, f"{opt['name']}.yml")
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    with open(log_file, 'w') as log:
        result = subprocess.run(training_command(opt, work_dir, opt_path), cwd=REPO_ROOT, stdout=log,
                                stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise SystemExit(f"error: run {opt['name']} failed (exit {result.returncode}); see {log_file}")
    return osp.join(work_dir, 'experiments', opt['name'])


def training_command(opt, work_dir, opt_path):
    """The command of one run: a plain process, or torchrun with one process per GPU when `num_gpu` > 1 (one
    process would train with one GPU's batch and LR scaling)."""
    gpus = opt.get('num_gpu') or 0
    if isinstance(gpus, int) and gpus > 1:
        return [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={gpus}', '-m', TRAINING_MODULE,
                work_dir, '-opt', opt_path, '--launcher', 'pytorch']
    return [sys.executable, '-m', TRAINING_MODULE, work_dir, '-opt', opt_path]


class Runs:
    """Trains (or, asked to, reuses) the runs of one benchmark invocation in `work_dir`, one after the other."""

    def __init__(self, work_dir):
        self.work_dir = work_dir
        self.trained = []  # labels of the runs this invocation trained (not reused)

    def weights(self, name):
        return osp.join(self.work_dir, 'experiments', name, 'models', 'net_g_latest.pth')

    def run(self, label, opt, reuse=False):
        """Train `opt` (or, with `reuse`, find a finished run with the same options); returns its experiment root."""
        root = osp.join(self.work_dir, 'experiments', opt['name'])
        if reuse and finished_with(root, opt, osp.join(self.work_dir, f"{opt['name']}.yml")):
            print(f"{label}: reusing the finished run {opt['name']} (same options)", flush=True)
        else:
            print(f"{label}: training {opt['name']} for {opt['train']['total_iter']} iterations", flush=True)
            started = time.time()
            root = train_in_subprocess(opt, self.work_dir, osp.join(self.work_dir, f"{opt['name']}.log"))
            print(f'{label}: done in {time.time() - started:.0f} s', flush=True)
            self.trained.append(label)
        return root


def finished_with(experiment_root, opt, used_options):
    """Whether the run in experiment_root used exactly `opt`, finished (has its final weights) and started after
    the weights it started from were last written (a run from an earlier sparse run's weights at the same path is
    not the same run)."""
    if not (osp.isfile(used_options) and osp.isfile(osp.join(experiment_root, 'models', 'net_g_latest.pth'))):
        return False
    used = read_option_file(used_options)
    if _without(used, SINGLE_PROCESS_IRRELEVANT) != _without(opt, SINGLE_PROCESS_IRRELEVANT):
        return False
    started = osp.getmtime(used_options)
    inputs = [opt['path'].get(key) for key in ('pretrain_network_g', 'pretrain_network_t')]
    return all(osp.getmtime(path) <= started for path in inputs if path and osp.isfile(path))


def same_weights(path, state):
    """Whether `path` holds exactly the tensors of `state` under 'params'."""
    if not osp.isfile(path):
        return False
    stored = torch.load(path, map_location='cpu', weights_only=True).get('params', {})
    return stored.keys() == state.keys() and all(torch.equal(stored[key], state[key]) for key in state)


def _without(opt, keys):
    return {k: v for k, v in opt.items() if k not in keys}


def benchmark_logging(opt, name, val_points):
    """Benchmark settings: validation at `val_points` evenly spaced iterations, no intermediate checkpoints, no
    TensorBoard."""
    opt = copy.deepcopy(opt)
    opt['name'] = name
    total_iter = int(opt['train']['total_iter'])
    opt['val']['val_freq'] = max(1, total_iter // val_points)
    opt['logger'].update(save_checkpoint_freq=10 * total_iter, use_tb_logger=False,
                         print_freq=max(1, total_iter // 20))
    return opt


def largebatch_options(opt, factor):
    """Batch x factor, iterations / factor, LR scaled linearly (Goyal et al.) with the warmup kept."""
    opt = copy.deepcopy(opt)
    train_set, train = opt['datasets']['train'], opt['train']
    reference_batch = train_set['batch_size_per_gpu'] * max(1, int(opt.get('num_gpu') or 1))
    train_set['batch_size_per_gpu'] *= factor
    train['total_iter'] = int(train['total_iter']) // factor
    if isinstance(train['scheduler'].get('periods'), list):
        train['scheduler']['periods'] = [max(1, int(p) // factor) for p in train['scheduler']['periods']]
    hooks = [h for h in train.get('hooks') or [] if h.get('type') != 'LinearScalingLRHook']
    train['hooks'] = hooks + [{'type': 'LinearScalingLRHook', 'reference_batch': reference_batch}]
    return opt


def with_total_iter(opt, total_iter):
    """The run for `total_iter` iterations, a restart scheduler's single period with it."""
    opt['train']['total_iter'] = total_iter
    if isinstance(opt['train']['scheduler'].get('periods'), list):
        opt['train']['scheduler']['periods'] = [total_iter]
    return opt


def warmup_choice(text):
    """A --warmups value: 'off', 'on' (the first 5% of iterations) or the fraction of iterations, e.g. 0.25."""
    if text in ('off', 'on'):
        return text
    try:
        fraction = float(text)
    except ValueError:
        fraction = None
    if fraction is None or not 0 < fraction < 1:
        raise argparse.ArgumentTypeError(f'{text!r} is not off, on or a fraction of the iterations in (0, 1)')
    return fraction


def variant_options(opt, lr_factor, warmup):
    """One point of the tuning grid: LR x lr_factor; warmup 'on' or a fraction (the same LinearWarmupHook over the
    first 5%, or that fraction, of the iterations for every run, replacing an option file's own) or 'off' (no
    LinearWarmupHook); None keeps the file's."""
    opt = copy.deepcopy(opt)
    train = opt['train']
    train['optim_g']['lr'] = train['optim_g']['lr'] * lr_factor
    if warmup is not None:
        others = [h for h in train.get('hooks') or [] if h.get('type') != 'LinearWarmupHook']
        fraction = DEFAULT_WARMUP_FRACTION if warmup == 'on' else warmup
        if warmup == 'off':
            train['hooks'] = others
        else:
            shared = {'type': 'LinearWarmupHook', 'warmup_iter': max(1, round(int(train['total_iter']) * fraction))}
            train['hooks'] = [shared] + others
    return opt


def precision_options(opt, precision, channels_last):
    """The run under `train.precision: precision` (and channels-last weights when asked)."""
    opt = copy.deepcopy(opt)
    opt['train']['precision'] = precision
    if channels_last:
        opt['train']['channels_last'] = True
    return opt


def seeded(opt, seed_offset):
    """The same run with its manual_seed moved on by `seed_offset`."""
    opt = copy.deepcopy(opt)
    opt['manual_seed'] = int(opt.get('manual_seed') or 0) + seed_offset
    return opt


def split_paths(root, split):
    """The dataset keys of one split of a demo / make_video_dataset.py folder."""
    return {'dataroot_gt': osp.join(root, split, 'GT'), 'dataroot_lq': osp.join(root, split, 'LQ'),
            'meta_info_file': osp.join(root, f'meta_info_{split}.txt')}


def data_root(opt):
    """The folder holding the val split the options read (`<root>/val/GT`); runs start in REPO_ROOT."""
    gt = opt['datasets']['val']['dataroot_gt']
    return osp.dirname(osp.dirname((gt if osp.isabs(gt) else osp.join(REPO_ROOT, gt)).rstrip('/')))


def use_data(opt, data):
    """Train and validate on a folder made by tools/make_demo_data.py or tools/make_video_dataset.py."""
    data = osp.abspath(data)
    for split in ('train', 'val'):
        paths = split_paths(data, split)
        if not osp.isfile(paths['meta_info_file']):
            raise SystemExit(f"error: --data: {data} has no {split} split ({paths['meta_info_file']} not found)")
        opt['datasets'][split].update(paths)


def with_test_split(opt):
    """Validate on the data's test split too (`datasets.val_2`, named `<val name>_test`) when it has one."""
    val = opt['datasets']['val']
    paths = split_paths(data_root(opt), 'test')
    if osp.isfile(paths['meta_info_file']):
        opt['datasets']['val_2'] = dict(val, name=f"{val['name']}_test", **paths)
    return opt
