"""Shared fixtures: a small demo dataset built once per session, option files derived from the shipped demo
options, and a helper that runs BasicSR training in a subprocess exactly as users do."""
import copy
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
