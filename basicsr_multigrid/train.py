"""Training entry point: `python basicsr_multigrid/train.py -opt options/train/....yml [--auto_resume] [--debug]
[--launcher none|pytorch|slurm] [--force_yml key=value]`. The run itself is `training/runner.py`."""
import sys
from os import path as osp

# Run as a script, this file's folder is sys.path[0]; drop it so `test.py`, `data`, ... don't shadow real modules.
sys.path = [p for p in sys.path if osp.abspath(p or '.') != osp.dirname(osp.abspath(__file__))]

import basicsr_multigrid  # noqa: E402,F401  (compat fixes + registration, before basicsr)
from basicsr_multigrid.training.cli import run_cli  # noqa: E402
from basicsr_multigrid.training.runner import train_pipeline  # noqa: E402

if __name__ == '__main__':
    run_cli(train_pipeline, osp.abspath(osp.join(__file__, osp.pardir, osp.pardir)))
