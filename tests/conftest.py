"""Shared fixtures: a small demo dataset built once per session, option files derived from the shipped demo
options, and a helper that runs BasicSR training in a subprocess exactly as users do."""
import copy
import json
import hashlib
import os
import subprocess
import sys
from os import path as osp

import pytest
import yaml

import basicsr_multigrid  # noqa: F401  (before any basicsr import: compat fixes + registration)

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_OPTIONS = osp.join(REPO_ROOT, 'options', 'train', 'demo', 'train_BasicVSR_demo.yml')


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory):
    """Real-texture demo clips (128x128 GT, 32x32 LQ), built by the same code as `make demo`."""
    from basicsr_multigrid.utils.demo_data import make_demo_dataset
    root = str(tmp_path_factory.mktemp('demo') / 'data')
    make_demo_dataset(root, size=128, train_frames=12, val_frames=6, seed=0)
    return root


@pytest.fixture(scope='module')
def one_torch_thread():
    """Small forwards gain little from threads, and lose a lot to oversubscription on a busy machine."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def set_dotted(opt, dotted_key, value):
    *parents, last = dotted_key.split('.')
    node = opt
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def demo_options(demo_data, base=DEMO_OPTIONS, **overrides):
    """The shipped demo options pointed at `demo_data`, shrunk for tests; overrides use dotted keys
    with '__' for '.', e.g. train__total_iter=10."""
    opt = copy.deepcopy(load_yaml(base))
    for split, key in (('train', 'train'), ('val', 'val')):
        dataset = opt['datasets'][key]
        dataset['dataroot_gt'] = osp.join(demo_data, split, 'GT')
        dataset['dataroot_lq'] = osp.join(demo_data, split, 'LQ')
        dataset['meta_info_file'] = osp.join(demo_data, f'meta_info_{split}.txt')
    for dotted, value in overrides.items():
        set_dotted(opt, dotted.replace('__', '.'), value)
    return opt


def write_options(opt, folder, filename='options.yml'):
    path = osp.join(str(folder), filename)
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


def run_training(root_path, options_path, *extra_args, cwd=None, check=True, timeout=600):
    """Run basicsr's train pipeline through this package in a fresh process, experiments under root_path.

    The result's stdout holds stdout and stderr (where BasicSR's logger writes) interleaved."""
    code = ('import sys, basicsr_multigrid.pipeline as p; '
            'p.train_pipeline(sys.argv[1], argv=["train.py"] + sys.argv[2:])')
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    result = subprocess.run([sys.executable, '-c', code, str(root_path), '-opt', options_path, *extra_args],
                            cwd=cwd or REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f'training failed ({result.returncode}):\n{result.stdout[-6000:]}')
    return result


def tree_digest(folder):
    """Digest of every folder name, file name and file content under `folder`: equal iff nothing changed."""
    digest = hashlib.sha1()
    for root, dirs, files in sorted(os.walk(folder)):
        digest.update(repr(sorted(dirs)).encode())
        for name in sorted(files):
            with open(osp.join(root, name), 'rb') as f:
                digest.update(name.encode() + f.read())
    return digest.hexdigest()


def metric_records(root, name):
    with open(osp.join(root, 'experiments', name, 'val_metrics.jsonl')) as f:
        return [json.loads(line) for line in f]


TINY_WIDTHS = dict(feature_channels=[32, 32, 32, 32], kernel_channels=4, grid_channels=[4, 4, 4],
                   tem_channels=[4, 4, 4, 4], tem_fuse_channels=4, pad_multiple=64)


def vfi_options(demo_data, base, name, **overrides):
    """A shipped demo VFI option file on the test demo data, tiny widths, a few iterations. The test clips are
    too short for held-out windows at gap 2, so validation reads one window of each training clip."""
    opt = load_yaml(osp.join(REPO_ROOT, 'options', 'train', 'demo', base))
    opt['name'] = name
    for phase in ('train', 'val'):
        opt['datasets'][phase].update(dataroot=osp.join(demo_data, 'train', 'GT'),
                                      meta_info_file=osp.join(demo_data, 'meta_info_train.txt'))
    opt['datasets']['val']['window_stride'] = 6
    for key in ('network_g', 'network_t'):
        if key in opt:
            opt[key].update(TINY_WIDTHS)
    opt['datasets']['train'].update(num_worker_per_gpu=0)
    opt['train'].update(total_iter=3)
    opt['train']['scheduler']['milestones'] = [2]
    opt['val']['val_freq'] = 3
    opt['logger'].update(print_freq=1, save_checkpoint_freq=3)
    for dotted, value in overrides.items():
        set_dotted(opt, dotted.replace('__', '.'), value)
    return opt


@pytest.fixture(scope='session')
def vfi_teacher(demo_data, tmp_path_factory):
    """A tiny ST-MFNet trained for 3 iterations on the demo VFI data (experiment vfi_teacher under the root)."""
    root = tmp_path_factory.mktemp('vfi_teacher')
    run_training(root, write_options(vfi_options(demo_data, 'train_STMFNet_demo.yml', 'vfi_teacher'), root))
    return root
