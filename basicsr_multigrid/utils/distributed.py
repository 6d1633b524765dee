"""Process-group set-up for BasicSR's `--launcher pytorch` (torchrun) and `--launcher slurm`, on GPUs and CPU.

BasicSR 1.4.2 always uses nccl and picks the GPU as RANK % device count (a crash without GPUs, the wrong GPU
on multi-node runs). Here the backend comes from `dist_params.backend` (default: nccl with GPUs, gloo on CPU),
the GPU from LOCAL_RANK (SLURM_LOCALID under slurm), and the slurm master port from `dist_params.port`.
"""
import os
import re
import shutil
import subprocess
import sys

from basicsr_multigrid.utils.errors import OptionError
from basicsr_multigrid.utils.option_file import option_path_from_argv, read_option_file

DEFAULT_PORT = 29500
BACKENDS = ('nccl', 'gloo')


def choose_backend(opt):
    import torch
    uses_gpus = opt.get('num_gpu', 'auto') != 0 and torch.cuda.is_available()
    backend = (opt.get('dist_params') or {}).get('backend') or ('nccl' if uses_gpus else 'gloo')
    if backend not in BACKENDS:
        raise OptionError(f'dist_params.backend: {backend!r} is not supported; use one of {", ".join(BACKENDS)}')
    if backend == 'nccl' and not uses_gpus:
        raise OptionError('dist_params.backend: nccl needs CUDA GPUs; use gloo for CPU training (num_gpu: 0)')
    return backend, uses_gpus


def first_slurm_host(node_list):
    """First host of a SLURM_NODELIST ('gpu[03-05,09],cpu1' -> 'gpu03'), via scontrol when it is there."""
    if shutil.which('scontrol'):
        hosts = subprocess.run(['scontrol', 'show', 'hostnames', node_list], capture_output=True, text=True).stdout
        if hosts.split():
            return hosts.split()[0]
    match = re.match(r'([^,\[]+)(?:\[([^\]]+)\])?', node_list)
    if not match:
        raise OptionError(f'SLURM_NODELIST: cannot read a host from {node_list!r}')
    prefix, ranges = match.groups()
    return prefix + (re.split(r'[-,]', ranges)[0] if ranges else '')


def _require_env(names):
    missing = [name for name in names if name not in os.environ]
    if missing:
        raise OptionError(f'--launcher: environment variable {missing[0]} is not set (start the run with '
                          'torchrun for --launcher pytorch, or srun for --launcher slurm)')


def slurm_environment(port):
    """Translate SLURM_* variables into the RANK / WORLD_SIZE / LOCAL_RANK / MASTER_* that torch reads."""
    _require_env(('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'))
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    os.environ.setdefault('MASTER_ADDR', first_slurm_host(os.environ['SLURM_NODELIST']))
    os.environ['MASTER_PORT'] = str(port or os.environ.get('MASTER_PORT', DEFAULT_PORT))


def init_distributed(launcher, opt):
    """Join the process group of this run; returns the backend used."""
    import torch
    import torch.distributed as dist
    backend, uses_gpus = choose_backend(opt)
    if launcher == 'slurm':
        slurm_environment((opt.get('dist_params') or {}).get('port'))
    elif launcher == 'pytorch':
        _require_env(('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'))
    else:
        raise OptionError(f'--launcher: {launcher!r} is not one of none, pytorch, slurm')
    if uses_gpus:
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)))
    dist.init_process_group(backend=backend)
    return backend


def init_dist_from_argv(launcher, **_ignored):
    """Drop-in for basicsr.utils.options.init_dist: reads dist_params and num_gpu from the -opt file itself,
    because basicsr passes dist_params only to slurm."""
    return init_distributed(launcher, read_option_file(option_path_from_argv(sys.argv)))
