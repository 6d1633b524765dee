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
import copy
import json
import os
import sys
import time
from os import path as osp


REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from basicsr_multigrid.training.recorder import read_run  # noqa: E402
from basicsr_multigrid.training.cli import train_in_subprocess  # noqa: E402
from basicsr_multigrid.utils.benchmarking import machine_name  # noqa: E402
from basicsr_multigrid.utils.errors import OptionError  # noqa: E402
from basicsr_multigrid.utils.option_file import read_option_file  # noqa: E402

PRESETS = {
    # tiny BasicVSR on the demo data, 2 CPU cores: about 30 minutes for the three runs without --tune
    'cpu-small': {
        'baseline': 'options/train/demo/train_BasicVSR_demo.yml',
        'multigrid': ['options/train/demo/train_BasicVSR_multigrid_demo.yml'],
        'largebatch': 2,
        'val_points': 8,  # each file's own total_iter: the baseline 400, the multigrid schedule 460
    },
    # BasicVSR (64 channels, 10 blocks) on the demo data at the paper's patch sizes (LR 32 then 64), one CUDA GPU:
    # the REDS-free GPU check; on an H200 the baseline's 800 iterations took 4 minutes (host-bound, see README)
    'gpu-demo': {
        'baseline': 'options/train/demo/train_BasicVSR_gpu_demo.yml',
        'multigrid': ['options/train/demo/train_BasicVSR_multigrid_gpu_demo.yml'],
        'largebatch': 2,
        'val_points': 4,
        'total_iter': 800,
    },
    # BasicVSR on REDS with the paper's settings (8 GPUs in the option files; see README)
    'paper': {
        'baseline': 'options/train/BasicVSR/train_BasicVSR_REDS.yml',
        'multigrid': ['options/train/BasicVSR/train_BasicVSR_multigrid_REDS.yml'],
        'largebatch': 4,
        'val_points': 30,
    },
}


def load_options(path):
    try:
        return read_option_file(path)
    except OptionError as error:
        raise SystemExit(f'error: {error}') from None


def largebatch_options(opt, factor):
    """Batch x factor, iterations / factor, LR scaled linearly (Goyal et al.) with the warmup kept."""
    opt = copy.deepcopy(opt)
    train_set, train = opt['datasets']['train'], opt['train']
    reference_batch = train_set['batch_size_per_gpu'] * max(1, int(opt.get('num_gpu') or 1))
    train_set['batch_size_per_gpu'] *= factor
    train['total_iter'] = int(train['total_iter']) // factor
    if isinstance(train['scheduler'].get('periods'), list):
        train['scheduler']['periods'] = [max(1, int(p) // factor) for p in train['scheduler']['periods']]
    hooks = [h for h in train.get('hooks') or [] if h.get('type') != 'LinearScalingLRHook']
    train['hooks'] = hooks + [{'type': 'LinearScalingLRHook', 'reference_batch': reference_batch}]
    return opt


def prepare_run(opt, name, val_points):
    """Benchmark settings: validation at evenly spaced iterations, no intermediate checkpoints, no TensorBoard."""
    opt = copy.deepcopy(opt)
    opt['name'] = name
    total_iter = int(opt['train']['total_iter'])
    opt['val']['val_freq'] = max(1, total_iter // val_points)
    opt['logger'].update(save_checkpoint_freq=10 * total_iter, use_tb_logger=False,
                         print_freq=max(1, total_iter // 20))
    return opt


def summarize_run(experiment_root, label, opt):
    """The run's measurements: per split (`val`, and `test` when the data has one) the final PSNR / SSIM and the
    curve `[wall_s, iter, psnr]`; `final_psnr`, `final_ssim` and `curve` at the top level are val's."""
    run = read_run(experiment_root)
    split_of = {dataset['name']: split for split, dataset in (('val', opt['datasets']['val']),
                                                              ('test', opt['datasets'].get('val_2') or {}))}
    splits = {}
    for split in ('val', 'test'):
        by_iter = {r['iter']: r for r in run.validations if split_of.get(r['dataset']) == split}  # last one twice
        records = [by_iter[it] for it in sorted(by_iter)]
        if records:
            splits[split] = {'final_psnr': records[-1]['psnr'], 'final_ssim': records[-1].get('ssim'),
                             'curve': [[r['wall_s'], r['iter'], r['psnr']] for r in records]}
    phases = run.phase_timing
    samples = sum(p['iters'] * p['batch_size_per_gpu'] for p in phases)
    compute_s = sum(p['iters'] * p['s_per_iter'] for p in phases if p['iters'])
    return {
        'name': label, 'wall_s': splits['val']['curve'][-1][0], 'final_psnr': splits['val']['final_psnr'],
        'final_ssim': splits['val']['final_ssim'], 'curve': splits['val']['curve'], 'splits': splits,
        'iters': int(opt['train']['total_iter']), 'batch_size_per_gpu': opt['datasets']['train']['batch_size_per_gpu'],
        'samples_per_s': samples / compute_s if compute_s else None, 'phases': phases,
        'precision': opt['train'].get('precision', 'fp32'), 'channels_last': opt['train'].get('channels_last', False),
    }


def with_test_split(opt):
    """Validate on the data's test split too (`datasets.val_2`, named `<val name>_test`) when it has one."""
    val = opt['datasets']['val']
    paths = split_paths(data_root(opt), 'test')
    if osp.isfile(paths['meta_info_file']):
        opt['datasets']['val_2'] = dict(val, name=f"{val['name']}_test", **paths)
    return opt


def split_paths(root, split):
    """The dataset keys of one split of a demo / make_video_dataset.py folder."""
    return {'dataroot_gt': osp.join(root, split, 'GT'), 'dataroot_lq': osp.join(root, split, 'LQ'),
            'meta_info_file': osp.join(root, f'meta_info_{split}.txt')}


def data_root(opt):
    """The folder holding the val split the options read (`<root>/val/GT`); runs start in REPO_ROOT."""
    gt = opt['datasets']['val']['dataroot_gt']
    return osp.dirname(osp.dirname((gt if osp.isabs(gt) else osp.join(REPO_ROOT, gt)).rstrip('/')))


DEFAULT_WARMUP_FRACTION = 0.05


def warmup_choice(text):
    """A --warmups value: 'off', 'on' (the first 5% of iterations) or the fraction of iterations, e.g. 0.25."""
    if text in ('off', 'on'):
        return text
    try:
        fraction = float(text)
    except ValueError:
        fraction = None
    if fraction is None or not 0 < fraction < 1:
        raise argparse.ArgumentTypeError(f'{text!r} is not off, on or a fraction of the iterations in (0, 1)')
    return fraction


def variant_options(opt, lr_factor, warmup):
    """One point of the --tune grid: LR x lr_factor; warmup 'on' or a fraction (the same LinearWarmupHook over the
    first 5%, or that fraction, of the iterations for every run, replacing an option file's own) or 'off' (no
    LinearWarmupHook); None keeps the file's."""
    opt = copy.deepcopy(opt)
    train = opt['train']
    train['optim_g']['lr'] = train['optim_g']['lr'] * lr_factor
    if warmup is not None:
        others = [h for h in train.get('hooks') or [] if h.get('type') != 'LinearWarmupHook']
        fraction = DEFAULT_WARMUP_FRACTION if warmup == 'on' else warmup
        if warmup == 'off':
            train['hooks'] = others
        else:
            shared = {'type': 'LinearWarmupHook', 'warmup_iter': max(1, round(int(train['total_iter']) * fraction))}
            train['hooks'] = [shared] + others
    return opt


def spread(values):
    """Mean, min and max of the values that are not None (None when none is), and how many were None."""
    present = [v for v in values if v is not None]
    if not present:
        return {'mean': None, 'min': None, 'max': None, 'missing': len(values)}
    return {'mean': sum(present) / len(present), 'min': min(present), 'max': max(present),
            'missing': len(values) - len(present)}


def split_comparison(baseline_runs, runs, split):
    """Per seed pair (baseline seed k, run seed k) on `split`: speedup to the baseline's final PSNR and PSNR drop,
    with their mean and spread over seeds."""
    speedups, drops = [], []
    for baseline, run in zip(baseline_runs, runs):
        target = baseline['splits'][split]['final_psnr']
        reached = time_to_psnr(run['splits'][split]['curve'], target)
        speedups.append(baseline['wall_s'] / reached if reached else None)
        drops.append(target - run['splits'][split]['final_psnr'])
    return {'speedup_to_baseline_psnr': spread(speedups), 'speedup_values': speedups,
            'psnr_drop_db': spread(drops), 'psnr_drop_values': drops,
            'final_psnr': spread([run['splits'][split]['final_psnr'] for run in runs])}


def time_to_psnr(curve, target):
    """The first validated wall-clock time of a `[wall_s, iter, psnr]` curve at `target` dB or above, or None."""
    return next((wall for wall, _, psnr in curve if psnr >= target), None)


def compare(runs):
    """Relative costs against the baseline, and each run's speedup to the baseline's final PSNR."""
    baseline = runs[0]
    baseline_s_per_iter = baseline['phases'][-1]['s_per_iter']
    for run in runs:
        for phase in run['phases']:
            phase['measured_rel_cost'] = (phase['s_per_iter'] / baseline_s_per_iter if phase['iters']
                                          else None)  # only steps that compiled (train.compile)
        reached = time_to_psnr(run['curve'], baseline['final_psnr'])
        run['speedup_to_baseline_psnr'] = baseline['wall_s'] / reached if reached else None
        run['psnr_drop_db'] = baseline['final_psnr'] - run['final_psnr']
    first_multigrid = runs[1]
    return {'speedup_to_baseline_psnr': first_multigrid['speedup_to_baseline_psnr'],
            'psnr_drop_db': first_multigrid['psnr_drop_db']}


def plot(results, path):
    """PSNR against wall-clock time, one panel per split (val, and test when the data has one)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    splits = [split for split in ('val', 'test') if all(split in run.get('splits', {}) for run in results['runs'])]
    splits = splits or ['val']
    fig, axes = plt.subplots(1, len(splits), figsize=(8 * len(splits), 5), squeeze=False)
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for ax, split in zip(axes[0], splits):
        for i, run in enumerate(results['runs']):
            curve = run['splits'][split]['curve'] if 'splits' in run else run['curve']
            walls, _, psnrs = zip(*curve)
            ax.plot(walls, psnrs, marker='o', color=colours[i % len(colours)], label=run['name'])
        shade_phases(ax, results['runs'][1])
        baseline = results['runs'][0]
        final = baseline['splits'][split]['final_psnr'] if 'splits' in baseline else baseline['final_psnr']
        ax.axhline(final, color='grey', linestyle=':', linewidth=1, label='baseline final PSNR')
        bicubic = (results.get('bicubic') or {}).get(split)
        if bicubic:
            ax.axhline(bicubic, color='black', linestyle='--', linewidth=1, label='bicubic')
        ax.set_xlabel('wall-clock training time (s, validation excluded)')
        ax.set_ylabel(f'{split} PSNR (dB)')
        comparison = (results.get('splits') or {}).get(split, {}).get(results['runs'][1]['name'])
        seeds = results.get('seeds', 1)
        if comparison:
            speedup, drop = comparison['speedup_to_baseline_psnr']['mean'], comparison['psnr_drop_db']['mean']
        else:
            speedup, drop = results['speedup_to_baseline_psnr'], results['psnr_drop_db']
        outcome = f'{speedup:.2f}x' if speedup else 'not reached'
        over = f' (mean of {seeds} seeds; curves: seed 0)' if seeds > 1 else ''
        ax.set_title(f"{split}: {results['runs'][1]['name']} vs baseline on {results['machine']} ({results['date']})\n"
                     f"speedup to baseline PSNR: {outcome}, PSNR drop {drop:+.3f} dB{over}", fontsize=10)
        ax.legend(loc='lower right', fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def shade_phases(ax, run):
    """Shade the multigrid phases of `run` along the wall-clock axis (from its measured phase times)."""
    start = 0.0
    for i, phase in enumerate(run['phases']):
        end = start + phase['iters'] * (phase['s_per_iter'] or 0) + phase.get('compile_s', 0)
        ax.axvspan(start, end, alpha=0.06 if i % 2 else 0.12, color='tab:orange', lw=0)
        ax.text((start + end) / 2, 0.02 + 0.07 * (i % 2), f"{phase['lq_size']}px\nT={phase['num_frame']}",
                transform=ax.get_xaxis_transform(), ha='center', va='bottom', fontsize=7)
        start = end


def build_runs(args):
    preset = PRESETS[args.preset] if args.preset else {}
    baseline_path = args.baseline or preset.get('baseline')
    multigrid_paths = args.multigrid or preset.get('multigrid')
    if not baseline_path or not multigrid_paths:
        raise SystemExit('error: give --preset, or --baseline and at least one --multigrid option file')
    largebatch = args.largebatch if args.largebatch is not None else preset.get('largebatch', 0)
    baseline = load_options(baseline_path)
    runs = [('baseline', baseline)]
    for path in multigrid_paths:
        runs.append((osp.splitext(osp.basename(path))[0].replace('train_', ''), load_options(path)))
    total_iter = args.total_iter or preset.get('total_iter')
    if total_iter:
        for _, opt in runs:
            opt['train']['total_iter'] = total_iter
            if isinstance(opt['train']['scheduler'].get('periods'), list):
                opt['train']['scheduler']['periods'] = [total_iter]
    if largebatch and largebatch > 1:
        runs.append((f'{runs[1][0]}_batch_x{largebatch}', largebatch_options(runs[1][1], largebatch)))
    if args.data:
        for _, opt in runs:
            use_data(opt, args.data)
    runs += [(f'{label}_{precision}', precision_options(opt, precision, args.channels_last))
             for precision in args.precision for label, opt in runs]
    return runs, args.val_points or preset.get('val_points', 6)


def precision_options(opt, precision, channels_last):
    """The run under `train.precision: precision` (and channels-last weights when asked)."""
    opt = copy.deepcopy(opt)
    opt['train']['precision'] = precision
    if channels_last:
        opt['train']['channels_last'] = True
    return opt


def precision_comparison(seed_runs, labels, precisions, splits):
    """{twin label: fp32 wall / twin wall at equal iterations and (twin - fp32) final PSNR per split, mean and
    spread over seed pairs}."""
    comparisons = {}
    for precision in precisions:
        for label in labels:
            twin = f'{label}_{precision}'
            if twin not in seed_runs:
                continue
            pairs = list(zip(seed_runs[label], seed_runs[twin]))
            comparisons[twin] = {
                'against': label, 'precision': precision,
                'equal_iter_speedup': spread([fp32['wall_s'] / other['wall_s'] for fp32, other in pairs]),
                'psnr_change_db': {split: spread([other['splits'][split]['final_psnr']
                                                  - fp32['splits'][split]['final_psnr'] for fp32, other in pairs])
                                   for split in splits}}
    return comparisons


def use_data(opt, data):
    """Train and validate on a folder made by tools/make_demo_data.py or tools/make_video_dataset.py."""
    data = osp.abspath(data)
    for split in ('train', 'val'):
        paths = split_paths(data, split)
        if not osp.isfile(paths['meta_info_file']):
            raise SystemExit(f"error: --data: {data} has no {split} split ({paths['meta_info_file']} not found)")
        opt['datasets'][split].update(paths)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--preset', choices=sorted(PRESETS))
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
            plot(json.load(f), args.plot or osp.splitext(args.replot)[0] + '.png')
        return
    if args.seeds < 1:
        raise SystemExit(f'error: --seeds: must be >= 1, got {args.seeds}')

    runs, val_points = build_runs(args)
    runs = [(label, with_test_split(opt)) for label, opt in runs]
    stamp = time.strftime('%Y%m%d_%H%M%S')
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)

    def train(label, opt, suffix):
        name = f'bench_{stamp}_{label}{suffix}'
        print(f'[{label}{suffix}] training {opt["train"]["total_iter"]} iterations ...', flush=True)
        started = time.time()
        root = train_in_subprocess(prepare_run(opt, name, val_points), work_dir, osp.join(work_dir, f'{name}.log'))
        result = summarize_run(root, label, opt)
        print(f'[{label}{suffix}] {time.time() - started:.0f} s, final PSNR '
              + ', '.join(f"{split} {m['final_psnr']:.3f} dB" for split, m in result['splits'].items()), flush=True)
        return result

    tuning, seed_runs = {}, {}
    for label, opt in runs:
        grid = [(factor, warmup) for factor in args.lr_factors for warmup in args.warmups] if args.tune else [(1, None)]
        trials = []
        for factor, warmup in grid:
            variant = variant_options(opt, factor, warmup)
            result = train(label, variant, f'_lr{factor:g}_warmup_{warmup}' if args.tune else '')
            result['variant'] = {'lr_factor': factor, 'warmup': warmup}
            trials.append((result, variant))
        best, best_opt = max(trials, key=lambda trial: trial[0]['final_psnr'])  # chosen on val, never on test
        if args.tune:
            scores = [{f'{split}_psnr': m['final_psnr'] for split, m in r['splits'].items()} for r, _ in trials]
            tuning[label] = {'chosen': best['variant'],
                             'trials': [dict(r['variant'], **score) for (r, _), score in zip(trials, scores)]}
        seed_runs[label] = [best]
        for k in range(1, args.seeds):
            seeded = copy.deepcopy(best_opt)
            seeded['manual_seed'] = int(seeded.get('manual_seed') or 0) + k
            seed_runs[label].append(dict(train(label, seeded, f'_seed{k}'), variant=best['variant']))

    measured = [seed_runs[label][0] for label, _ in runs]
    results = {'machine': machine_name(), 'date': time.strftime('%Y-%m-%d'), 'seeds': args.seeds, 'tuned': args.tune,
               'runs': measured, 'tuning': tuning, 'seed_runs': seed_runs}
    results.update(compare(measured))
    results['bicubic_psnr'] = bicubic_psnr(runs[0][1])
    results['bicubic'] = bicubic_psnrs(runs[0][1])
    splits = [split for split in ('val', 'test') if all(split in run['splits'] for run in measured)]
    baseline_runs = seed_runs[runs[0][0]]
    results['splits'] = {split: {label: split_comparison(baseline_runs, seed_runs[label], split)
                                 for label, _ in runs[1:]} for split in splits}
    results['budget'] = budget_check(baseline_runs, results['bicubic'], splits[-1])
    results['precision'] = precision_comparison(seed_runs, [label for label, _ in runs], args.precision, splits)
    with open(args.out, 'w') as f:
        json.dump(results, f, indent=1)
    if args.plot:
        plot(results, args.plot)
    print(summary_table(results))
    print(split_summary(results))


MIN_MARGIN_OVER_BICUBIC_DB = 0.3


def budget_check(baseline_runs, bicubic, split):
    """Whether the baseline trained long enough to matter: its mean final PSNR on `split` (test when there is one)
    at least MIN_MARGIN_OVER_BICUBIC_DB above bicubic's."""
    baseline = spread([run['splits'][split]['final_psnr'] for run in baseline_runs])['mean']
    reference = bicubic.get(split)
    margin = baseline - reference if reference is not None else None
    return {'split': split, 'baseline_psnr': baseline, 'bicubic_psnr': reference, 'margin_db': margin,
            'long_enough': None if margin is None else margin >= MIN_MARGIN_OVER_BICUBIC_DB}


def split_summary(results):
    lines = []
    for split, comparisons in results['splits'].items():
        for label, c in comparisons.items():
            speedup, drop = c['speedup_to_baseline_psnr'], c['psnr_drop_db']
            reach = (f"reaches the baseline's final PSNR {speedup['mean']:.2f}x sooner "
                     f"(seeds {speedup['min']:.2f}-{speedup['max']:.2f}x"
                     + (f", {speedup['missing']} never" if speedup['missing'] else '') + ')'
                     if speedup['mean'] is not None else "never reaches the baseline's final PSNR")
            lines.append(f"{split}: {label} {reach}; final PSNR {-drop['mean']:+.3f} dB against it "
                         f"(seeds {-drop['max']:+.3f} to {-drop['min']:+.3f}); {results['seeds']} seed(s)")
    for twin, c in results.get('precision', {}).items():
        speedup = c['equal_iter_speedup']
        changes = '; '.join(f"{split} {d['mean']:+.3f} dB (seeds {d['min']:+.3f} to {d['max']:+.3f})"
                            for split, d in c['psnr_change_db'].items())
        lines.append(f"{twin}: {speedup['mean']:.2f}x faster than {c['against']} (fp32) at equal iterations "
                     f"(seeds {speedup['min']:.2f}-{speedup['max']:.2f}x); final PSNR against it: {changes}")
    budget = results['budget']
    if budget['margin_db'] is None:
        lines.append(f"{budget['split']}: baseline {budget['baseline_psnr']:.3f} dB; no bicubic reference here")
    else:
        verdict = ('long enough' if budget['long_enough'] else
                   f'too short: the baseline should end >= {MIN_MARGIN_OVER_BICUBIC_DB} dB above bicubic')
        lines.append(f"{budget['split']}: baseline {budget['baseline_psnr']:.3f} dB vs bicubic "
                     f"{budget['bicubic_psnr']:.3f} dB ({budget['margin_db']:+.3f} dB): training budget {verdict}")
    return '\n'.join(lines)


def bicubic_psnr(opt):
    """The bicubic baseline on val that the demo data and make_video_dataset.py folders record; None elsewhere."""
    return bicubic_psnrs(opt).get('val')


def bicubic_psnrs(opt):
    """{split: bicubic PSNR} as the demo data (demo_info.json) or a make_video_dataset.py folder records it."""
    root = data_root(opt)
    if osp.isfile(osp.join(root, 'demo_info.json')):
        with open(osp.join(root, 'demo_info.json')) as f:
            info = json.load(f)
        return {split: info[f'bicubic_{split}_psnr'] for split in ('val', 'test') if f'bicubic_{split}_psnr' in info}
    if osp.isfile(osp.join(root, 'dataset_info.json')):
        with open(osp.join(root, 'dataset_info.json')) as f:
            return json.load(f).get('bicubic_psnr', {})
    return {}


def summary_table(results):
    lines = ['| run | iters | batch | wall (s) | final PSNR (dB) | SSIM | samples/s | speedup to baseline PSNR |',
             '|---|---|---|---|---|---|---|---|']
    for run in results['runs']:
        speedup = run['speedup_to_baseline_psnr']
        lines.append(f"| {run['name']} | {run['iters']} | {run['batch_size_per_gpu']} | {run['wall_s']:.0f} | "
                     f"{run['final_psnr']:.3f} | {run['final_ssim']:.4f} | {run['samples_per_s']:.2f} | "
                     f"{f'{speedup:.2f}x' if speedup else 'not reached'} |")
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
