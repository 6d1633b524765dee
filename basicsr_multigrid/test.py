"""Test entry point: `python basicsr_multigrid/test.py -opt options/test/....yml`. Runs basicsr's test_pipeline."""
import sys
from os import path as osp

sys.path = [p for p in sys.path if osp.abspath(p or '.') != osp.dirname(osp.abspath(__file__))]

import basicsr_multigrid  # noqa: E402,F401  (compat fixes + registration, before basicsr)
from basicsr_multigrid.training.cli import run_cli, test_pipeline  # noqa: E402

if __name__ == '__main__':
    run_cli(test_pipeline, osp.abspath(osp.join(__file__, osp.pardir, osp.pardir)))
