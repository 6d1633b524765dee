"""Process-group set-up for BasicSR's `--launcher pytorch` (torchrun) and `--launcher slurm`, on GPUs and CPU.

BasicSR 1.4.2 always uses nccl and picks the GPU as RANK % device count (a crash without GPUs, the wrong GPU
on multi-node runs). Here the backend comes from `dist_params.backend` (default: nccl with GPUs, gloo on CPU),
the GPU from LOCAL_RANK (SLURM_LOCALID under slurm), and the slurm master port from `dist_params.port`.

A rank that dies must not leave the others waiting: collectives time out after `dist_params.timeout` seconds
(default 600, not torch's 30 minutes), and every rank beats a counter in the run's TCP store from a thread, so
that a rank whose collective failed can name the rank that went silent (RankStopped, exit status 5).
"""
import datetime
import os
import re
import shutil
import subprocess
import sys
import threading
import time

from basicsr_multigrid.utils.errors import OptionError, RankStopped
from basicsr_multigrid.utils.option_file import option_path_from_argv, read_option_file

DEFAULT_PORT = 29500
BACKENDS = ('nccl', 'gloo')
DEFAULT_TIMEOUT_S = 600
HEARTBEAT_S = 2.0
STORE_CONNECT_S = 10


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
    timeout = collective_timeout(opt)
    if uses_gpus:
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)))
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout))
    global _heartbeat
    _heartbeat = RankHeartbeat(dist.get_rank(), dist.get_world_size())
    return backend


def collective_timeout(opt):
    """`dist_params.timeout`: seconds a collective waits for the other ranks before it fails."""
    value = (opt.get('dist_params') or {}).get('timeout', DEFAULT_TIMEOUT_S)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise OptionError(f'dist_params.timeout: expected a positive number of seconds, got {value!r}')
    return value


def _store_client():
    """A connection of our own to the run's TCP store (torchrun's agent or rank 0 hosts it at MASTER_ADDR:PORT)."""
    import torch.distributed as dist
    return dist.TCPStore(os.environ['MASTER_ADDR'], int(os.environ['MASTER_PORT']), is_master=False,
                         timeout=datetime.timedelta(seconds=STORE_CONNECT_S))


class RankHeartbeat:
    """Adds 1 to this rank's counter in the store every HEARTBEAT_S seconds, from a daemon thread, until the
    process ends or the store is gone."""

    def __init__(self, rank, world_size):
        self.rank, self.world_size = rank, world_size
        store = _store_client()
        threading.Thread(target=self.beat, args=(store,), name='rank-heartbeat', daemon=True).start()

    @staticmethod
    def key(rank):
        return f'basicsr_multigrid/heartbeat/{rank}'

    def beat(self, store):
        while True:
            try:
                store.add(self.key(self.rank), 1)
            except Exception:  # noqa: BLE001  (the store went away with its host: nothing left to tell)
                return
            time.sleep(HEARTBEAT_S)

    def silent_ranks(self):
        """The other ranks whose counter did not move in 3 beats; [0] if the store is unreachable and rank 0
        hosted it (a launch without torchrun's agent)."""
        try:
            store = _store_client()
            before = [store.add(self.key(rank), 0) for rank in range(self.world_size)]
            time.sleep(3 * HEARTBEAT_S)
            after = [store.add(self.key(rank), 0) for rank in range(self.world_size)]
        except Exception:  # noqa: BLE001  (connection refused or timed out)
            return [] if self.rank == 0 or os.environ.get('TORCHELASTIC_USE_AGENT_STORE') == 'True' else [0]
        return [rank for rank in range(self.world_size) if rank != self.rank and after[rank] == before[rank]]


_heartbeat = None


def wait_for_all_ranks():
    """A barrier under DDP; nothing otherwise."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def stopped_rank_error(error, current_iter):
    """RankStopped naming the silent ranks when `error` (raised in a distributed run) came from another rank
    stopping; None when every rank is alive or the run is not distributed."""
    if _heartbeat is None or _heartbeat.world_size < 2:
        return None
    silent = _heartbeat.silent_ranks()
    if not silent:
        return None
    names = ', '.join(str(rank) for rank in silent)
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return RankStopped(f'rank {names} stopped (no heartbeat for {3 * HEARTBEAT_S:.0f} s); rank {_heartbeat.rank} '
                       f'stops at iteration {current_iter} instead of waiting for it ({reason[:200]})')


def init_dist_from_argv(launcher, **_ignored):
    """Drop-in for basicsr.utils.options.init_dist: reads dist_params and num_gpu from the -opt file itself,
    because basicsr passes dist_params only to slurm."""
    return init_distributed(launcher, read_option_file(option_path_from_argv(sys.argv)))


def agree(value, elsewhere):
    """Under DDP, `value` if this rank has one (not None), else `elsewhere` if any rank has one, else None: every
    rank takes the same branch after it (one all-reduce of a flag)."""
    import torch
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return value
    flag = torch.tensor([0.0 if value is None else 1.0], device='cuda' if dist.get_backend() == 'nccl' else 'cpu')
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return value if value is not None else (elsewhere if flag.item() else None)
