"""Checkpoint-and-exit on preemption signals (slurm's SIGTERM, or the `--signal=USR1@T` warning before it; Ctrl-C).

A signal named in `train.stop_signals` (default SIGTERM, SIGINT, SIGUSR1) only sets a flag: the iteration in
progress finishes, a complete checkpoint of exactly that iteration is written (atomically, as every checkpoint),
and the run exits with status 4 (`Preempted`); `--auto_resume` continues it as if it had never stopped. Under DDP
the ranks agree on the flag after every iteration, so all of them stop at the same one even when only one got the
signal. A second signal stops the process at once, as if it had not been caught. With `--requeue` inside a slurm
job, rank 0 asks slurm to requeue the job once the checkpoint is written.
"""
import os
import shutil
import signal
import subprocess

from basicsr_multigrid.utils.distributed import agree
from basicsr_multigrid.utils.errors import OptionError, TrainingStopped

DEFAULT_STOP_SIGNALS = ('SIGTERM', 'SIGINT', 'SIGUSR1')


class Preempted(TrainingStopped):
    """Stopped by a signal after writing a checkpoint of the last completed iteration; resume with --auto_resume."""
    exit_status = 4
    label = 'stopped'


def stop_signals(opt):
    """`train.stop_signals` as signal numbers: a list of names (`[SIGTERM, SIGUSR1]`); `[]` turns catching off."""
    names = (opt.get('train') or {}).get('stop_signals', list(DEFAULT_STOP_SIGNALS))
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise OptionError(f'train.stop_signals: expected a list of signal names such as [SIGTERM, SIGUSR1], '
                          f'got {names!r}')
    unknown = [name for name in names if name not in signal.Signals.__members__ or name in ('SIGKILL', 'SIGSTOP')]
    if unknown:
        raise OptionError(f'train.stop_signals: {unknown[0]} is not a signal this process can catch')
    return [signal.Signals[name] for name in names]


class PreemptionWatch:
    """While active (a context manager), the signals only set `received`; `stop_requested()` asks every rank."""

    def __init__(self, signals, logger):
        self.signals, self.logger = signals, logger
        self.received = None
        self.previous = {}
        self.pid = os.getpid()

    def __enter__(self):
        for signum in self.signals:
            self.previous[signum] = signal.signal(signum, self.handle)
        return self

    def __exit__(self, *exc_info):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous.clear()

    def handle(self, signum, frame):
        if os.getpid() != self.pid:
            return  # a forked loader worker: the main process stops the run
        name = signal.Signals(signum).name
        if self.received is not None:  # asked twice: stop now, as the signal would have without us
            previous = self.previous.get(signum, signal.SIG_DFL)
            self.__exit__()
            if callable(previous):
                previous(signum, frame)
            else:
                os.kill(os.getpid(), signum)
            return
        self.received = name
        # slurm and Ctrl-C signal every process of the job: a loader worker that SIGTERM ends must not make torch's
        # SIGCHLD check fail the main process before the checkpoint is written (no batch is fetched after this).
        self.previous.setdefault(signal.SIGCHLD, signal.signal(signal.SIGCHLD, signal.SIG_DFL))
        self.logger.warning(f'{name} received: finishing this iteration, then writing a checkpoint and stopping '
                            f'(send it again to stop at once)')

    def stop_requested(self):
        """The signal's name if this rank (or, as 'a signal on another rank', any rank) got one, else None."""
        return agree(self.received, 'a signal on another rank')


def requeue_slurm_job(logger):
    """`scontrol requeue $SLURM_JOB_ID`; a warning, not an error, when that is not possible."""
    job = os.environ.get('SLURM_JOB_ID')
    if job is None:
        logger.warning('--requeue: not a slurm job (SLURM_JOB_ID is not set); nothing requeued')
        return
    if shutil.which('scontrol') is None:
        logger.warning(f'--requeue: scontrol not found; slurm job {job} not requeued')
        return
    result = subprocess.run(['scontrol', 'requeue', job], capture_output=True, text=True)
    if result.returncode == 0:
        logger.info(f'--requeue: slurm job {job} requeued')
    else:
        logger.warning(f'--requeue: scontrol requeue {job} failed: {(result.stderr or result.stdout).strip()}')
