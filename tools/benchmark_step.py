"""Time the training step of an option file's model under several precisions / memory formats, side by side.

    python tools/benchmark_step.py -opt options/train/demo/train_BasicVSR_multigrid_demo.yml \\
        --variants fp32 bf16 bf16+channels_last --out step.json [--profile bf16]

For every shape the run trains at (each multigrid phase, or the fixed training shape) and every variant, the
model's own training step (`optimize_parameters`: forward, losses, backward, optimizer step) runs on random
batches of that shape. Variants take turns step by step, so drift of a noisy machine hits them alike; the first
`--warmup` steps of each are not timed. Reported: median seconds per step per shape and variant, each variant's
ratio to the first, and the schedule-weighted ratio (each phase's steps x its time), which is what a whole run
would gain. `--profile VARIANT` adds the operators that take the most time in that variant at the largest shape.

A variant is a precision (fp32, bf16, fp16) optionally followed by `+channels_last` and / or `+compile`; it sets
`train.precision`, `train.channels_last` and `train.compile` of the option file (compilation happens in the
untimed warmup steps, so keep `--warmup` >= 1 with `+compile`).

`--fit FIT.json` instead times the fp32 step on a small grid of (batch, clip length, LR patch) shapes that are not
the run's own (`--fit-grid`), fits seconds per step = fixed + per-frame x B*T + per-pixel x B*T*lq^2
(basicsr_multigrid/benchmarks/cost_model.py) and writes the fit, for `tools/show_schedule.py --cost-model FIT.json`.
`--compare RESULTS.json` adds the fit's predicted training time of each run recorded there against the measured one.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from basicsr_multigrid.benchmarks import cost_model, step_cost  # noqa: E402
from basicsr_multigrid.benchmarks.runs import REPO_ROOT, portable_path  # noqa: E402
from basicsr_multigrid.utils.benchmarking import machine_name  # noqa: E402
from basicsr_multigrid.utils.errors import OptionError  # noqa: E402
from basicsr_multigrid.utils.option_file import read_option_file  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', required=True, help='training option file')
    parser.add_argument('--variants', nargs='+', default=['fp32', 'bf16'], help='the first is the reference')
    parser.add_argument('--repeats', type=int, default=5, help='timed steps per shape and variant')
    parser.add_argument('--warmup', type=int, default=1, help='untimed steps per shape and variant')
    parser.add_argument('--threads', type=int, help='torch CPU threads (default: torch\'s)')
    parser.add_argument('--profile', metavar='VARIANT', help='also list the slowest operators of this variant')
    parser.add_argument('--out', help='write the results as JSON')
    parser.add_argument('--fit', metavar='FIT.json', help='fit the cost model on a grid of shapes, write it here')
    parser.add_argument('--fit-grid', default='default', choices=sorted(cost_model.GRID_LEVELS),
                        help='the shapes --fit times')
    parser.add_argument('--compare', metavar='RESULTS.json', help='with --fit: predict the runs recorded there')
    parser.add_argument('--held-out', action='store_true',
                        help="with --fit: also time the option file's own shapes (schedule and fixed-shape baseline) "
                             'and compare their run times with the prediction')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        opt = read_option_file(args.opt)
        device = 'cuda' if torch.cuda.is_available() and opt.get('num_gpu') != 0 else 'cpu'
        if args.fit:
            return fit(args, opt, device)
        variants = {name: step_cost.parse_variant(name) for name in args.variants}
        shapes = step_cost.training_shapes(opt)
        medians = step_cost.measure(opt, variants, shapes, args.repeats, args.warmup, device)
        largest = max(shapes, key=lambda s: s[2] * s[3] ** 2)
        profiled = step_cost.profile(opt, step_cost.parse_variant(args.profile), largest, device) \
            if args.profile else None
    except OptionError as error:
        raise SystemExit(f'error: {error}') from None
    results = {'machine': machine_name(), 'date': time.strftime('%Y-%m-%d'), 'device': device,
               'threads': torch.get_num_threads(), 'options': portable_path(args.opt, REPO_ROOT),
               'repeats': args.repeats,
               'shapes': [dict(zip(('iters', 'batch', 'num_frame', 'lq_size'), shape)) for shape in shapes],
               's_per_step': medians, 'speedup': step_cost.summarize(shapes, medians)}
    if profiled is not None:
        results['profile'] = {'variant': args.profile, 'ops': profiled}
    reference = args.variants[0]
    for name, speedup in results['speedup'].items():
        per_shape = ', '.join(f'{s:.2f}x' for s in speedup['speedup_per_shape'])
        print(f"{name}: {speedup['run_speedup']:.2f}x over {reference} for the whole run (per shape {per_shape})")
    for op in results.get('profile', {}).get('ops', []):
        print(f"  {args.profile}: {op['op']:<40} {op['share']:6.1%}  {op['calls']} calls/step")
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=1)


def fit(args, opt, device):
    load_before = os.getloadavg()[0]
    shapes = cost_model.fit_grid(args.fit_grid, avoid=[shape[1:] for shape in step_cost.training_shapes(opt)])
    seconds = cost_model.time_grid(opt, shapes, args.repeats, args.warmup, device)
    model = cost_model.make_record(opt, portable_path(args.opt, REPO_ROOT), shapes, seconds, machine=machine_name(),
                                   threads=torch.get_num_threads(), device=device, repeats=args.repeats,
                                   warmup=args.warmup, grid_name=args.fit_grid)
    model['load_average_1min'] = {'before': load_before, 'after_fit': os.getloadavg()[0]}
    c = model['coefficients']
    print(f"fit: s/step = {c['fixed_s']:.4g} + {c['per_frame_s']:.4g} x B*T + {c['per_pixel_s']:.4g} x B*T*lq^2")
    for g in model['grid']:
        print(f"  B{g['batch']} T{g['num_frame']} LR{g['lq_size']}: measured {g['s_per_step']:.4f} s, "
              f"fit {g['predicted_s']:.4f} s ({g['rel_error']:+.1%})")
    if args.held_out:
        runs = cost_model.held_out_runs(opt)
        shapes = sorted({tuple(phase[1:]) for phases in runs.values() for phase in phases})
        measured = dict(zip(shapes, cost_model.time_grid(opt, shapes, args.repeats, args.warmup, device)))
        model['held_out'] = cost_model.held_out_check(model, runs, measured)
        model['load_average_1min']['after_held_out'] = os.getloadavg()[0]
        for row in model['held_out']:
            print(f"  held out, {row['run']}: predicted {row['predicted_s']:.1f} s, measured now "
                  f"{row['measured_s']:.1f} s ({row['rel_error']:+.1%})")
    if args.compare:
        results = cost_model.load_results(args.compare)
        model['comparison'] = {'results': portable_path(args.compare, REPO_ROOT), 'tolerance': 0.15,
                               'runs': cost_model.compare_runs(model, results)}
        model['comparison']['speedups'] = cost_model.compare_speedups(model['comparison']['runs'])
        for row in model['comparison']['runs']:
            print(f"  {row['run']} #{row['seed_index']}: predicted {row['predicted_s']:.1f} s, measured "
                  f"{row['measured_compute_s']:.1f} s ({row['rel_error']:+.1%}), wall {row['wall_s']:.1f} s "
                  f"({row['rel_error_wall']:+.1%}): {'met' if row['within_tolerance'] else 'missed'}")
        for row in model['comparison']['speedups']:
            print(f"  speedup of {row['run']} over {row['over']}: predicted {row['predicted_speedup']:.2f}x, "
                  f"measured {row['measured_speedup']:.2f}x ({row['rel_error']:+.1%})")
    cost_model.save(model, args.fit)


if __name__ == '__main__':
    main()
