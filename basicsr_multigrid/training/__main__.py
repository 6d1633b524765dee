"""`python -m basicsr_multigrid.training ROOT -opt X.yml [train.py's flags]`: the training entry point of train.py
with the run's folders (experiments/, tb_logger/) under ROOT instead of the repository. Benchmarks and tests start
their runs in a fresh process this way."""
import sys

from basicsr_multigrid.training.cli import run_cli
from basicsr_multigrid.training.runner import train_pipeline


def main(argv):
    if len(argv) < 2 or argv[1].startswith('-'):
        sys.exit('usage: python -m basicsr_multigrid.training ROOT -opt X.yml [train.py flags]')
    run_cli(lambda root: train_pipeline(root, argv=['train.py'] + argv[2:]), argv[1])


if __name__ == '__main__':
    main(sys.argv)
