"""Thin wrappers around basicsr's train/test pipelines: argv fixes, then basicsr's own loop (no fork)."""
import sys

import basicsr.test
import basicsr.train

from basicsr_multigrid.compat import fix_b3_local_rank_argv


def train_pipeline(root_path, argv=None):
    sys.argv = fix_b3_local_rank_argv(sys.argv if argv is None else argv)
    basicsr.train.train_pipeline(root_path)


def test_pipeline(root_path, argv=None):
    sys.argv = fix_b3_local_rank_argv(sys.argv if argv is None else argv)
    basicsr.test.test_pipeline(root_path)
