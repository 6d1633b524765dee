"""Side-by-side benchmark of fixed-shape and multigrid VSR training: PSNR against wall-clock time.

    python tools/benchmark_multigrid.py --preset cpu-small --out results.json --plot results.png
    python tools/benchmark_multigrid.py --preset paper --out paper.json --plot paper.png        # GPUs, REDS
    python tools/benchmark_multigrid.py --baseline A.yml --multigrid B.yml [--multigrid C.yml] --out r.json

All runs of one invocation train the same model on the same data with the same seed and iterations (unless
an option file says otherwise), one after the other, through the package's training runner, validating at
`--val-points` evenly spaced iterations on the held-out clips. Wall-clock time excludes validation.
`--largebatch K` adds a run of the first multigrid file with batch x K, iterations / K and linear LR scaling
(the paper's second lever), reported with its per-sample throughput.
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
    # tiny BasicVSR on the demo data, 2 CPU cores, well under 25 minutes in all
    'cpu-small': {
        'baseline': 'options/train/demo/train_BasicVSR_demo.yml',
        'multigrid': ['options/train/demo/train_BasicVSR_multigrid_demo.yml'],
        'largebatch': 2,
        'val_points': 6,
        'total_iter': 300,
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
    run = read_run(experiment_root)
    by_iter = {record['iter']: record for record in run.validations}  # the last iteration is validated twice
    records = [by_iter[it] for it in sorted(by_iter)]
    phases = run.phase_timing
    final = records[-1]
    samples = sum(p['iters'] * p['batch_size_per_gpu'] for p in phases)
    compute_s = sum(p['iters'] * p['s_per_iter'] for p in phases)
    return {
        'name': label, 'wall_s': final['wall_s'], 'final_psnr': final['psnr'], 'final_ssim': final.get('ssim'),
        'iters': int(opt['train']['total_iter']), 'batch_size_per_gpu': opt['datasets']['train']['batch_size_per_gpu'],
        'samples_per_s': samples / compute_s if compute_s else None,
        'curve': [[r['wall_s'], r['iter'], r['psnr']] for r in records],
        'phases': phases,
    }


def time_to_psnr(run, target):
    """The first validated wall-clock time at which the run reaches `target` dB, or None."""
    return next((wall for wall, _, psnr in run['curve'] if psnr >= target), None)


def compare(runs):
    """Relative costs against the baseline, and each run's speedup to the baseline's final PSNR."""
    baseline = runs[0]
    baseline_s_per_iter = baseline['phases'][-1]['s_per_iter']
    for run in runs:
        for phase in run['phases']:
            phase['measured_rel_cost'] = phase['s_per_iter'] / baseline_s_per_iter
        reached = time_to_psnr(run, baseline['final_psnr'])
        run['speedup_to_baseline_psnr'] = baseline['wall_s'] / reached if reached else None
        run['psnr_drop_db'] = baseline['final_psnr'] - run['final_psnr']
    first_multigrid = runs[1]
    return {'speedup_to_baseline_psnr': first_multigrid['speedup_to_baseline_psnr'],
            'psnr_drop_db': first_multigrid['psnr_drop_db']}


def plot(results, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5))
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for i, run in enumerate(results['runs']):
        walls, _, psnrs = zip(*run['curve'])
        ax.plot(walls, psnrs, marker='o', color=colours[i % len(colours)], label=run['name'])
    shade_phases(ax, results['runs'][1])
    baseline = results['runs'][0]
    ax.axhline(baseline['final_psnr'], color='grey', linestyle=':', linewidth=1, label='baseline final PSNR')
    if results.get('bicubic_psnr'):
        ax.axhline(results['bicubic_psnr'], color='black', linestyle='--', linewidth=1, label='bicubic')
    ax.set_xlabel('wall-clock training time (s, validation excluded)')
    ax.set_ylabel('validation PSNR (dB)')
    speedup = results['speedup_to_baseline_psnr']
    outcome = f'{speedup:.2f}x' if speedup else 'not reached'
    ax.set_title(f"Multigrid vs fixed-shape training on {results['machine']} ({results['date']})\n"
                 f"speedup to baseline PSNR: {outcome}, PSNR drop {results['psnr_drop_db']:+.3f} dB", fontsize=10)
    ax.legend(loc='lower right', fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def shade_phases(ax, run):
    """Shade the multigrid phases of `run` along the wall-clock axis (from its measured phase times)."""
    start = 0.0
    for i, phase in enumerate(run['phases']):
        end = start + phase['iters'] * phase['s_per_iter']
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
    return runs, args.val_points or preset.get('val_points', 6)


def use_data(opt, data):
    """Train and validate on a folder made by tools/make_demo_data.py or tools/make_video_dataset.py."""
    data = osp.abspath(data)
    for split in ('train', 'val'):
        meta = osp.join(data, f'meta_info_{split}.txt')
        if not osp.isfile(meta):
            raise SystemExit(f'error: --data: {data} has no {split} split ({meta} not found)')
        opt['datasets'][split].update(dataroot_gt=osp.join(data, split, 'GT'), dataroot_lq=osp.join(data, split, 'LQ'),
                                      meta_info_file=meta)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--preset', choices=sorted(PRESETS))
    parser.add_argument('--baseline', help='fixed-shape option file')
    parser.add_argument('--multigrid', action='append', help='multigrid option file (repeatable)')
    parser.add_argument('--largebatch', type=int, help='add a run with batch x K (0: none)')
    parser.add_argument('--total-iter', type=int, help='override total_iter of every run')
    parser.add_argument('--data', help='dataset folder (tools/make_video_dataset.py, make_demo_data.py) for every run')
    parser.add_argument('--val-points', type=int, help='validations per run')
    parser.add_argument('--work-dir', default=osp.join(REPO_ROOT, 'experiments', 'benchmarks'))
    parser.add_argument('--out', default='results.json')
    parser.add_argument('--plot', help='PNG of PSNR against wall-clock time')
    parser.add_argument('--replot', metavar='RESULTS_JSON', help='only draw --plot from an earlier results file')
    args = parser.parse_args(argv)
    if args.replot:
        with open(args.replot) as f:
            plot(json.load(f), args.plot or osp.splitext(args.replot)[0] + '.png')
        return

    runs, val_points = build_runs(args)
    stamp = time.strftime('%Y%m%d_%H%M%S')
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    measured = []
    for label, opt in runs:
        name = f'bench_{stamp}_{label}'
        print(f'[{label}] training {opt["train"]["total_iter"]} iterations ...', flush=True)
        started = time.time()
        root = train_in_subprocess(prepare_run(opt, name, val_points), work_dir, osp.join(work_dir, f'{name}.log'))
        measured.append(summarize_run(root, label, opt))
        print(f'[{label}] {time.time() - started:.0f} s, final PSNR {measured[-1]["final_psnr"]:.3f} dB', flush=True)

    results = {'machine': machine_name(), 'date': time.strftime('%Y-%m-%d'), 'runs': measured}
    results.update(compare(measured))
    results['bicubic_psnr'] = bicubic_psnr(runs[0][1])
    with open(args.out, 'w') as f:
        json.dump(results, f, indent=1)
    if args.plot:
        plot(results, args.plot)
    print(summary_table(results))


def bicubic_psnr(opt):
    """The bicubic baseline on val that the demo data and make_video_dataset.py folders record; None elsewhere."""
    root = osp.join(osp.dirname(opt['datasets']['val']['dataroot_gt'].rstrip('/')), os.pardir)
    for name, read in (('demo_info.json', lambda info: info.get('bicubic_val_psnr')),
                       ('dataset_info.json', lambda info: info.get('bicubic_psnr', {}).get('val'))):
        if osp.isfile(osp.join(root, name)):
            with open(osp.join(root, name)) as f:
                return read(json.load(f))
    return None


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
