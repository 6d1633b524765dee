"""Thin wrappers around basicsr's train/test pipelines: argv fixes and the multigrid loader, then basicsr's
own loop (no fork).

`basicsr.train` looks up `load_resume_state` and `create_train_val_dataloader` as module globals at call
time, so they are swapped for the duration of one run: the loader factory needs the iteration a resumed run
starts from, to continue the schedule and the data order exactly where they stopped.
"""
import contextlib
import sys

import basicsr.test
import basicsr.train

from basicsr_multigrid import compat
from basicsr_multigrid.multigrid import dataloader
from basicsr_multigrid.utils.errors import OptionError
from basicsr_multigrid.utils.option_file import option_path_from_argv, read_option_file


@contextlib.contextmanager
def _replaced(module, **attributes):
    saved = {name: getattr(module, name) for name in attributes}
    for name, value in attributes.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


def train_pipeline(root_path, argv=None):
    sys.argv = compat.fix_b3_local_rank_argv(sys.argv if argv is None else argv)
    read_option_file(option_path_from_argv(sys.argv))  # one-line errors for a missing or malformed file
    resumed = {'iter': 0}
    stock_factory = basicsr.train.create_train_val_dataloader

    def load_resume_state(opt):  # the first call after parse_options, before any folder is made
        dataloader.preflight(opt)
        state = compat.load_resume_state(opt)
        resumed['iter'] = state['iter'] if state else 0
        return state

    def create_train_val_dataloader(opt, logger):
        if dataloader.uses_scheduled_shapes(opt):
            return dataloader.create_train_val_dataloader(opt, logger, start_iter=resumed['iter'])
        if opt['train'].get('multigrid') is not None:
            raise OptionError(f"datasets.train.type: {opt['datasets']['train']['type']} cannot change shapes per "
                             'batch; use MultigridPairedVideoDataset with train.multigrid')
        return stock_factory(opt, logger)

    with _replaced(basicsr.train, load_resume_state=load_resume_state,
                   create_train_val_dataloader=create_train_val_dataloader):
        basicsr.train.train_pipeline(root_path)


def test_pipeline(root_path, argv=None):
    sys.argv = compat.fix_b3_local_rank_argv(sys.argv if argv is None else argv)
    read_option_file(option_path_from_argv(sys.argv))
    basicsr.test.test_pipeline(root_path)


def run_cli(pipeline, root_path):
    """Entry-point runner: bad options or data end with one line on stderr and exit status 2."""
    try:
        pipeline(root_path)
    except OptionError as error:
        print(f'error: {error}', file=sys.stderr)
        sys.exit(2)
