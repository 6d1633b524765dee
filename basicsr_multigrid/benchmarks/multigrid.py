"""The multigrid benchmark: fixed-shape and multigrid VSR training side by side, PSNR against wall-clock time
(tools/benchmark_multigrid.py is its command line; its help says what the runs and the JSON hold)."""
import os
import time
from os import path as osp

from basicsr_multigrid.benchmarks import runs as run_options
from basicsr_multigrid.benchmarks.summaries import (MIN_MARGIN_OVER_BICUBIC_DB, bicubic_psnrs, budget_check, compare,
                                                    precision_comparison, split_comparison, summarize_run)
from basicsr_multigrid.utils.benchmarking import machine_name
from basicsr_multigrid.utils.errors import OptionError

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
        return run_options.load_options(path)
    except OptionError as error:
        raise SystemExit(f'error: {error}') from None


def build_runs(args):
    """[(label, options)] of the invocation: the baseline, each multigrid file, the large-batch run, every run
    pointed at --data, and the precision twins; and the validations per run."""
    preset = PRESETS[args.preset] if args.preset else {}
    baseline_path = args.baseline or preset.get('baseline')
    multigrid_paths = args.multigrid or preset.get('multigrid')
    if not baseline_path or not multigrid_paths:
        raise SystemExit('error: give --preset, or --baseline and at least one --multigrid option file')
    largebatch = args.largebatch if args.largebatch is not None else preset.get('largebatch', 0)
    runs = [('baseline', load_options(baseline_path))]
    for path in multigrid_paths:
        runs.append((osp.splitext(osp.basename(path))[0].replace('train_', ''), load_options(path)))
    total_iter = args.total_iter or preset.get('total_iter')
    if total_iter:
        runs = [(label, run_options.with_total_iter(opt, total_iter)) for label, opt in runs]
    if largebatch and largebatch > 1:
        runs.append((f'{runs[1][0]}_batch_x{largebatch}', run_options.largebatch_options(runs[1][1], largebatch)))
    if args.data:
        for _, opt in runs:
            run_options.use_data(opt, args.data)
    runs += [(f'{label}_{precision}', run_options.precision_options(opt, precision, args.channels_last))
             for precision in args.precision for label, opt in runs]
    return runs, args.val_points or preset.get('val_points', 6)


def run_benchmark(args):
    """Train every run of `args` (tools/benchmark_multigrid.py's arguments), tuned and seeded as asked; returns the
    results the JSON holds."""
    runs, val_points = build_runs(args)
    runs = [(label, run_options.with_test_split(opt)) for label, opt in runs]
    stamp = time.strftime('%Y%m%d_%H%M%S')
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)

    def train(label, opt, suffix):
        name = f'bench_{stamp}_{label}{suffix}'
        print(f'[{label}{suffix}] training {opt["train"]["total_iter"]} iterations ...', flush=True)
        started = time.time()
        root = run_options.train_in_subprocess(run_options.benchmark_logging(opt, name, val_points), work_dir,
                                               osp.join(work_dir, f'{name}.log'))
        result = summarize_run(root, label, opt)
        print(f'[{label}{suffix}] {time.time() - started:.0f} s, final PSNR '
              + ', '.join(f"{split} {m['final_psnr']:.3f} dB" for split, m in result['splits'].items()), flush=True)
        return result

    tuning, seed_runs = {}, {}
    for label, opt in runs:
        best, best_opt, tuning_record = tuned_run(train, label, opt, args)
        if tuning_record:
            tuning[label] = tuning_record
        seed_runs[label] = [best] + [dict(train(label, run_options.seeded(best_opt, k), f'_seed{k}'),
                                          variant=best['variant']) for k in range(1, args.seeds)]
    return results_of(runs, seed_runs, tuning, args)


def tuned_run(train, label, opt, args):
    """The run of `label` (with --tune: every point of the grid, the best final PSNR on val kept, never chosen on
    test): (its summary, its options, the tuning record or None)."""
    grid = [(factor, warmup) for factor in args.lr_factors for warmup in args.warmups] if args.tune else [(1, None)]
    trials = []
    for factor, warmup in grid:
        variant = run_options.variant_options(opt, factor, warmup)
        result = train(label, variant, f'_lr{factor:g}_warmup_{warmup}' if args.tune else '')
        result['variant'] = {'lr_factor': factor, 'warmup': warmup}
        trials.append((result, variant))
    best, best_opt = max(trials, key=lambda trial: trial[0]['final_psnr'])
    if not args.tune:
        return best, best_opt, None
    scores = [{f'{split}_psnr': m['final_psnr'] for split, m in r['splits'].items()} for r, _ in trials]
    return best, best_opt, {'chosen': best['variant'],
                            'trials': [dict(r['variant'], **score) for (r, _), score in zip(trials, scores)]}


def results_of(runs, seed_runs, tuning, args):
    measured = [seed_runs[label][0] for label, _ in runs]
    results = {'machine': machine_name(), 'date': time.strftime('%Y-%m-%d'), 'seeds': args.seeds, 'tuned': args.tune,
               'runs': measured, 'tuning': tuning, 'seed_runs': seed_runs}
    results.update(compare(measured))
    bicubic = bicubic_psnrs(runs[0][1])
    results.update(bicubic_psnr=bicubic.get('val'), bicubic=bicubic)
    splits = [split for split in ('val', 'test') if all(split in run['splits'] for run in measured)]
    baseline_runs = seed_runs[runs[0][0]]
    results['splits'] = {split: {label: split_comparison(baseline_runs, seed_runs[label], split)
                                 for label, _ in runs[1:]} for split in splits}
    results['budget'] = budget_check(baseline_runs, results['bicubic'], splits[-1])
    results['precision'] = precision_comparison(seed_runs, [label for label, _ in runs], args.precision, splits)
    return results


def summary_table(results):
    lines = ['| run | iters | batch | wall (s) | final PSNR (dB) | SSIM | samples/s | speedup to baseline PSNR |',
             '|---|---|---|---|---|---|---|---|']
    for run in results['runs']:
        speedup = run['speedup_to_baseline_psnr']
        lines.append(f"| {run['name']} | {run['iters']} | {run['batch_size_per_gpu']} | {run['wall_s']:.0f} | "
                     f"{run['final_psnr']:.3f} | {run['final_ssim']:.4f} | {run['samples_per_s']:.2f} | "
                     f"{f'{speedup:.2f}x' if speedup else 'not reached'} |")
    return '\n'.join(lines)


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
    lines.append(budget_line(results['budget']))
    return '\n'.join(lines)


def budget_line(budget):
    if budget['margin_db'] is None:
        return f"{budget['split']}: baseline {budget['baseline_psnr']:.3f} dB; no bicubic reference here"
    verdict = ('long enough' if budget['long_enough'] else
               f'too short: the baseline should end >= {MIN_MARGIN_OVER_BICUBIC_DB} dB above bicubic')
    return (f"{budget['split']}: baseline {budget['baseline_psnr']:.3f} dB vs bicubic {budget['bicubic_psnr']:.3f} dB "
            f"({budget['margin_db']:+.3f} dB): training budget {verdict}")


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
        ax.set_title(panel_title(results, split), fontsize=10)
        ax.legend(loc='lower right', fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def panel_title(results, split):
    comparison = (results.get('splits') or {}).get(split, {}).get(results['runs'][1]['name'])
    seeds = results.get('seeds', 1)
    if comparison:
        speedup, drop = comparison['speedup_to_baseline_psnr']['mean'], comparison['psnr_drop_db']['mean']
    else:
        speedup, drop = results['speedup_to_baseline_psnr'], results['psnr_drop_db']
    outcome = f'{speedup:.2f}x' if speedup else 'not reached'
    over = f' (mean of {seeds} seeds; curves: seed 0)' if seeds > 1 else ''
    return (f"{split}: {results['runs'][1]['name']} vs baseline on {results['machine']} ({results['date']})\n"
            f"speedup to baseline PSNR: {outcome}, PSNR drop {drop:+.3f} dB{over}")


def shade_phases(ax, run):
    """Shade the multigrid phases of `run` along the wall-clock axis (from its measured phase times)."""
    start = 0.0
    for i, phase in enumerate(run['phases']):
        end = start + phase['iters'] * (phase['s_per_iter'] or 0) + phase.get('compile_s', 0)
        ax.axvspan(start, end, alpha=0.06 if i % 2 else 0.12, color='tab:orange', lw=0)
        ax.text((start + end) / 2, 0.02 + 0.07 * (i % 2), f"{phase['lq_size']}px\nT={phase['num_frame']}",
                transform=ax.get_xaxis_transform(), ha='center', va='bottom', fontsize=7)
        start = end
