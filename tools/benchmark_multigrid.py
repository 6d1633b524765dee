"""Side-by-side benchmark of fixed-shape and multigrid VSR training: PSNR against wall-clock time.

    python tools/benchmark_multigrid.py --preset cpu-small --out results.json --plot results.png
    python tools/benchmark_multigrid.py --preset gpu-demo --precision bf16 --out gpu.json --plot gpu.png  # 1 GPU
    python tools/benchmark_multigrid.py --preset paper --out paper.json --plot paper.png        # GPUs, REDS
    python tools/benchmark_multigrid.py --baseline A.yml --multigrid B.yml [--multigrid C.yml] --out r.json

All runs of one invocation train the same model on the same data with the same seed and iterations (unless
an option file says otherwise), one after the other, through the package's training runner, validating at
`--val-points` evenly spaced iterations on the held-out clips. Wall-clock time excludes validation.
`--largebatch K` adds a run of the first multigrid file with batch x K, iterations / K and linear LR scaling
(the paper's second lever), reported with its per-sample throughput.

When the data has a test split (the demo data, tools/make_video_dataset.py folders) every run also validates on
it. `--tune` trains every run on the same grid (LR x --lr-factors, LinearWarmupHook --warmups off / on / a
fraction of the iterations) and keeps, for each, the variant with the best final PSNR on val; `--seeds N`
repeats each kept run with N seeds. The JSON
then has per-split curves, each comparison's `speedup_to_baseline_psnr` and `psnr_drop_db` per split as mean and
min / max over seed pairs, and `budget`: whether the baseline ends >= 0.3 dB above bicubic on test (else the
iteration budget is too short to say anything), which is also printed.

`--precision bf16` (or fp16 on CUDA) adds, in the same invocation, a twin of every run trained under that
precision (`<name>_bf16`, `runs[].precision`); every run's speedup is against the fp32 fixed-shape baseline, and
`precision` in the JSON compares each twin with its fp32 run: wall-clock ratio at equal iterations and final PSNR
difference per split. `--channels-last` turns on channels-last weights in those twins.
"""
import argparse
import json
import sys
from os import path as osp

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from basicsr_multigrid.benchmarks import multigrid  # noqa: E402
from basicsr_multigrid.benchmarks.runs import REPO_ROOT, warmup_choice  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--preset', choices=sorted(multigrid.PRESETS))
    parser.add_argument('--baseline', help='fixed-shape option file')
    parser.add_argument('--multigrid', action='append', help='multigrid option file (repeatable)')
    parser.add_argument('--largebatch', type=int, help='add a run with batch x K (0: none)')
    parser.add_argument('--total-iter', type=int, help='override total_iter of every run')
    parser.add_argument('--data', help='dataset folder (tools/make_video_dataset.py, make_demo_data.py) for every run')
    parser.add_argument('--val-points', type=int, help='validations per run')
    parser.add_argument('--tune', action='store_true',
                        help='give every run the same grid (--lr-factors x --warmups), choose each on val')
    parser.add_argument('--lr-factors', type=float, nargs='+', default=[0.5, 1.0, 2.0], help='--tune LR factors')
    parser.add_argument('--warmups', nargs='+', type=warmup_choice, default=['off', 'on'],
                        help='--tune warmups: off, on (the first 5%% of iterations) or a fraction such as 0.25')
    parser.add_argument('--seeds', type=int, default=1, help='repeat each chosen run with this many seeds')
    parser.add_argument('--precision', nargs='+', choices=('bf16', 'fp16'), default=[],
                        help='add a twin of every run trained under this precision (train.precision)')
    parser.add_argument('--channels-last', action='store_true', help='channels-last weights in the --precision twins')
    parser.add_argument('--work-dir', default=osp.join(REPO_ROOT, 'experiments', 'benchmarks'))
    parser.add_argument('--out', default='results.json')
    parser.add_argument('--plot', help='PNG of PSNR against wall-clock time')
    parser.add_argument('--replot', metavar='RESULTS_JSON', help='only draw --plot from an earlier results file')
    args = parser.parse_args(argv)
    if args.replot:
        with open(args.replot) as f:
            multigrid.plot(json.load(f), args.plot or osp.splitext(args.replot)[0] + '.png')
        return
    if args.seeds < 1:
        raise SystemExit(f'error: --seeds: must be >= 1, got {args.seeds}')

    results = multigrid.run_benchmark(args)
    with open(args.out, 'w') as f:
        json.dump(results, f, indent=1)
    if args.plot:
        multigrid.plot(results, args.plot)
    print(multigrid.summary_table(results))
    print(multigrid.split_summary(results))


if __name__ == '__main__':
    main()
