"""Print the multigrid training schedule that a BasicSR option file produces.

Usage (from the repository root):
    python tools/show_schedule.py -opt options/train/X.yml          # human-readable table
    python tools/show_schedule.py -opt options/train/X.yml --json   # phases and predicted speedup as JSON
    python tools/show_schedule.py -opt options/train/X.yml --cost-model fit.json  # + predicted time on a machine
      (fit.json: tools/benchmark_step.py --fit; with --json the prediction is under "cost_model")

Per phase: iterations, batch and clips per GPU, LR factor and predicted cost per iteration (relative to the
fixed-shape baseline); for the run: its iterations (fewer than the options' total_iter under
`batch_scaling: constant_compute`), its clips per GPU and the predicted speedup.
"""
import argparse
import json
import os
import sys


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from basicsr_multigrid.benchmarks import cost_model  # noqa: E402
from basicsr_multigrid.multigrid.schedule import MultigridSchedule  # noqa: E402
from basicsr_multigrid.utils.errors import OptionError  # noqa: E402
from basicsr_multigrid.utils.option_file import read_option_file  # noqa: E402

JSON_PHASE_KEYS = ('start_iter', 'end_iter', 'lq_size', 'gt_size', 'num_frame', 'batch_size_per_gpu', 'lr_factor')
USAGE_ERROR = 2


def schedule_summary(schedule: MultigridSchedule) -> dict:
    """The stable, machine-readable subset of the schedule that --json prints."""
    # per phase also its iterations, clips per GPU and predicted cost of one iteration relative to the baseline's
    return {
        'phases': [{**{key: getattr(phase, key) for key in JSON_PHASE_KEYS}, 'num_iters': phase.num_iters,
                    'num_clips': phase.num_clips, 'relative_cost': schedule.relative_cost(phase)}
                   for phase in schedule.phases],
        'predicted_speedup': schedule.predicted_speedup(),
        'total_iter': schedule.total_iter,
        'options_total_iter': schedule.base_total_iter,
        'total_clips': schedule.total_clips,
    }


def load_schedule(option_path: str) -> MultigridSchedule:
    return MultigridSchedule.from_options(read_option_file(option_path))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-opt', required=True, help='path to the option YAML file')
    parser.add_argument('--json', action='store_true', help='print phases and predicted speedup as JSON')
    parser.add_argument('--cost-model', metavar='FIT.json',
                        help='predict training time and speedup with a fit of tools/benchmark_step.py --fit')
    args = parser.parse_args(argv)
    try:
        schedule = load_schedule(args.opt)
        fitted = load_cost_model(args.cost_model, args.opt) if args.cost_model else None
    except OptionError as err:
        print(f'error: {" ".join(str(err).split())}', file=sys.stderr)
        return USAGE_ERROR
    summary = schedule_summary(schedule)
    if fitted is not None:
        summary['cost_model'] = cost_model.schedule_prediction(fitted, schedule)
    print(json.dumps(summary, indent=2) if args.json else schedule.format_table())
    if fitted is not None and not args.json:
        print(cost_model.format_prediction(fitted, schedule, args.cost_model))
    return 0


def load_cost_model(fit_path: str, option_path: str) -> dict:
    """The fit, checked to be for the option file's network (OptionError otherwise)."""
    fitted = cost_model.load(fit_path)
    cost_model.check_matches(fitted, read_option_file(option_path), fit_path)
    return fitted


if __name__ == '__main__':
    sys.exit(main())
