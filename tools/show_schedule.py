"""Print the multigrid training schedule that a BasicSR option file produces.

Usage (from the repository root):
    python tools/show_schedule.py -opt options/train/X.yml          # human-readable table
    python tools/show_schedule.py -opt options/train/X.yml --json   # phases and predicted speedup as JSON
"""
import argparse
import json
import os
import sys


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from basicsr_multigrid.multigrid.schedule import MultigridSchedule  # noqa: E402
from basicsr_multigrid.utils.errors import OptionError  # noqa: E402
from basicsr_multigrid.utils.option_file import read_option_file  # noqa: E402

JSON_PHASE_KEYS = ('start_iter', 'end_iter', 'lq_size', 'gt_size', 'num_frame', 'batch_size_per_gpu', 'lr_factor')
USAGE_ERROR = 2


def schedule_summary(schedule: MultigridSchedule) -> dict:
    """The stable, machine-readable subset of the schedule that --json prints."""
    return {
        'phases': [{key: getattr(phase, key) for key in JSON_PHASE_KEYS} for phase in schedule.phases],
        'predicted_speedup': schedule.predicted_speedup(),
    }


def load_schedule(option_path: str) -> MultigridSchedule:
    return MultigridSchedule.from_options(read_option_file(option_path))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-opt', required=True, help='path to the option YAML file')
    parser.add_argument('--json', action='store_true', help='print phases and predicted speedup as JSON')
    args = parser.parse_args(argv)
    try:
        schedule = load_schedule(args.opt)
    except OptionError as err:
        print(f'error: {" ".join(str(err).split())}', file=sys.stderr)
        return USAGE_ERROR
    print(json.dumps(schedule_summary(schedule), indent=2) if args.json else schedule.format_table())
    return 0


if __name__ == '__main__':
    sys.exit(main())
