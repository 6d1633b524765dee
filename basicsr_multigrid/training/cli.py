"""What `train.py` and `test.py` run: BasicSR's flags (and `--requeue`), one-line errors for bad input (exit status 2)
and for runs that stop themselves (exit status 3 to 5, utils/errors.py)."""
import subprocess
import sys
from os import path as osp

import basicsr.test
import yaml

from basicsr_multigrid import compat
from basicsr_multigrid.utils.errors import OptionError, TrainingStopped
from basicsr_multigrid.utils.option_file import option_path_from_argv, read_option_file


def prepare_argv(argv=None):
    """sys.argv for basicsr's parser: `--local-rank` spelt as it expects (B3), and the `-opt` file checked first
    (one-line errors for a missing or malformed file) unless the user asks for help. Returns the file's options
    as written (None with --help)."""
    sys.argv = compat.fix_b3_local_rank_argv(sys.argv if argv is None else argv)
    if not {'-h', '--help'} & set(sys.argv):
        return read_option_file(option_path_from_argv(sys.argv))
    return None


def take_flag(flag):
    """Whether `flag` (a switch basicsr's parser does not know) is on the command line; it is removed from it."""
    present = flag in sys.argv
    sys.argv = [arg for arg in sys.argv if arg != flag]
    return present


def test_pipeline(root_path, argv=None):
    """basicsr's test pipeline (`-opt`, `--launcher`, `--force_yml`)."""
    prepare_argv(argv)
    basicsr.test.test_pipeline(root_path)


# The training entry point as train.py runs it (one-line errors, exit status 2 / 3), with experiments under
# argv[1] (for runs in a fresh process).
TRAIN_CODE = ('import sys; from basicsr_multigrid.training.cli import run_cli; '
              'from basicsr_multigrid.training.runner import train_pipeline; '
              'run_cli(lambda root: train_pipeline(root, argv=["train.py"] + sys.argv[2:]), sys.argv[1])')
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def train_in_subprocess(opt, work_dir, log_file):
    """One training run in a fresh process (the benchmarks' runs), experiments in work_dir; returns the
    experiment folder. The options are written to `<work_dir>/<name>.yml`."""
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
    command = [sys.executable, '-c', TRAIN_CODE, work_dir, '-opt', opt_path]
    gpus = opt.get('num_gpu') or 0
    if isinstance(gpus, int) and gpus > 1:
        return [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={gpus}', '--no-python',
                *command, '--launcher', 'pytorch']
    return command


def run_cli(pipeline, root_path):
    """Entry-point runner: bad options or data end with one line on stderr and exit status 2, a run that stops
    itself (TrainingStopped and its kinds) with one line and the kind's exit status."""
    try:
        pipeline(root_path)
    except OptionError as error:
        print(f'error: {error}', file=sys.stderr)
        sys.exit(2)
    except TrainingStopped as error:
        print(f'{error.label}: {error}', file=sys.stderr)
        sys.exit(error.exit_status)
