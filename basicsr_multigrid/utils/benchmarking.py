"""Shared by the benchmarks in tools/: a training run in a fresh process, and the machine it ran on."""
import os
import platform
import subprocess
import sys
from os import path as osp

import yaml

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def train_in_subprocess(opt, work_dir, log_file):
    """One BasicSR training run in a fresh process (the same entry point as train.py); experiments in work_dir.
    Returns the experiment folder."""
    opt_path = osp.join(work_dir, f"{opt['name']}.yml")
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    code = 'import sys, basicsr_multigrid.pipeline as p; p.train_pipeline(sys.argv[1], argv=["train.py"] + sys.argv[2:])'
    with open(log_file, 'w') as log:
        result = subprocess.run([sys.executable, '-c', code, work_dir, '-opt', opt_path], cwd=REPO_ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise SystemExit(f"error: run {opt['name']} failed (exit {result.returncode}); see {log_file}")
    return osp.join(work_dir, 'experiments', opt['name'])


def machine_name():
    try:
        import torch
        if torch.cuda.is_available():
            return f'{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}'
    except ImportError:
        pass
    model = platform.processor() or platform.machine()
    if osp.isfile('/proc/cpuinfo'):
        with open('/proc/cpuinfo') as f:
            model = next((line.split(':', 1)[1].strip() for line in f if line.startswith('model name')), model)
    return f'CPU {model}, {os.cpu_count()} cores'
