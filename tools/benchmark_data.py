"""Time loading one training sample per multigrid phase shape and storage backend: the loader workers' CPU time.

    python tools/benchmark_data.py --data datasets/demo-1280x720 datasets/demo --backends disk frame_store \\
        [-opt options/train/demo/train_BasicVSR_multigrid_demo.yml] [--samples 20] --out docs/results/data-cost.json

Every --data root is a video-folder dataset (<root>/train/{GT,LQ}, meta_info_train.txt; build one with
tools/make_demo_data.py [--size 1280x720]); a backend reads <root>/train/GT (disk), GT.lmdb (lmdb) or GT.frames
(frame_store: tools/create_frame_store.py). Each sample is built in a DataLoader worker on one thread, and its
CPU time (time.process_time of the worker) is what it costs training; see basicsr_multigrid/benchmarks/data_cost.py.
The target reported: the store on the largest frames costs at most --max-ratio x PNG on the smallest, every shape.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from basicsr_multigrid.benchmarks import data_cost  # noqa: E402
from basicsr_multigrid.benchmarks.runs import REPO_ROOT, portable_path  # noqa: E402
from basicsr_multigrid.utils.atomic_io import write_text_atomic  # noqa: E402
from basicsr_multigrid.utils.benchmarking import machine_name  # noqa: E402
from basicsr_multigrid.utils.errors import OptionError  # noqa: E402
from basicsr_multigrid.utils.option_file import read_option_file  # noqa: E402

DEFAULT_OPTIONS = 'options/train/demo/train_BasicVSR_multigrid_demo.yml'
USAGE_ERROR = 2


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', default=DEFAULT_OPTIONS, help='option file: schedule shapes and dataset options')
    parser.add_argument('--data', nargs='+', required=True, help='video-folder dataset roots')
    parser.add_argument('--backends', nargs='+', default=['disk', 'frame_store'],
                        choices=sorted(data_cost.BACKEND_SUFFIXES))
    parser.add_argument('--samples', type=int, default=20, help='timed samples per shape, root and backend')
    parser.add_argument('--warmup', type=int, default=2, help='untimed samples before them')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--max-ratio', type=float, default=2.0, help='the target (see above)')
    parser.add_argument('--out', help='write the results as JSON')
    args = parser.parse_args(argv)
    try:
        opt = read_option_file(args.opt if os.path.isabs(args.opt) else os.path.join(REPO_ROOT, args.opt))
        runs = data_cost.measure_data_cost(opt, args.data, args.backends, args.samples, args.seed, args.warmup)
    except OptionError as error:
        print(f'benchmark_data: error: {error}', file=sys.stderr)
        return USAGE_ERROR
    for run in runs:
        run['data'] = portable_path(run['data'], REPO_ROOT)
    target = data_cost.target(runs, args.max_ratio)
    results = {'machine': machine_name(), 'date': time.strftime('%Y-%m-%d'),
               'options': portable_path(args.opt, REPO_ROOT),
               'measure': 'CPU ms per sample (time.process_time of one DataLoader worker, 1 thread), mean over '
                          'samples; wall ms beside it; warm page cache',
               'samples': args.samples, 'warmup': args.warmup, 'seed': args.seed, 'runs': runs, 'target': target}
    print(f"{results['machine']}; {args.samples} samples per cell; CPU ms per sample (wall ms)")
    heads = ['LR {lq_size} T {num_frame}'.format(**row) for row in runs[0]['shapes']]
    print(f"{'data':<28} {'frames':>10} {'backend':>12} " + ' '.join(f'{head:>18}' for head in heads))
    for run in runs:
        cells = ['{cpu_ms_per_sample:.1f} ({wall_ms_per_sample:.1f})'.format(**row) for row in run['shapes']]
        print(f"{run['data']:<28} {run['frame_size']:>10} {run['backend']:>12} " + ' '.join(f'{c:>18}' for c in cells))
    if target:
        ratios = ', '.join(f"LR {r['lq_size']} T {r['num_frame']}: {r['ratio']:.2f}" for r in target['shapes'])
        print(f"target ({target['rule']}): {'met' if target['met'] else 'MISSED'}; ratios {ratios}")
    if args.out:
        write_text_atomic(args.out, [json.dumps(results, indent=1) + '\n'])
    return 0


if __name__ == '__main__':
    sys.exit(main())
