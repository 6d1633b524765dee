"""What `train.py` and `test.py` run: BasicSR's flags (and `--requeue`), one-line errors for bad input (exit status 2)
and for runs that stop themselves (exit status 3 to 5, utils/errors.py)."""
import sys

import basicsr.test

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
