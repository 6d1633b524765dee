"""What the benchmarks report of their runs: one summary of a finished run (every benchmark reads its runs through
`summarize_run`), and the comparisons built from summaries: time to a PSNR, PSNR drop, spread over seeds, the
precision twins, whether the training budget was long enough (against bicubic)."""
import json
from os import path as osp

from basicsr_multigrid.benchmarks.runs import data_root
from basicsr_multigrid.training.recorder import read_run

SPLIT_OF_DATASET = {'val': 'val', 'val_2': 'test'}  # the option key of each split's dataset (runs.with_test_split)
TEACHER_SUFFIX = '_teacher'  # a distillation run's validation of its teacher (training/runner.py)
MIN_MARGIN_OVER_BICUBIC_DB = 0.3


def summarize_run(experiment_root, label, opt):
    """The run's measurements: per split it validated on (`val`, and `test` when the data has one) the final PSNR /
    SSIM and the curve `[wall_s, iter, psnr]`; `final_psnr`, `final_ssim`, `curve` and `wall_s` at the top level
    are val's. The teacher's and the training weights' validations (other dataset names) are not the run's."""
    run = read_run(experiment_root)
    split_of = {opt['datasets'][key]['name']: split for key, split in SPLIT_OF_DATASET.items()
                if key in opt['datasets']}
    splits = {}
    for split in SPLIT_OF_DATASET.values():
        by_iter = {r['iter']: r for r in run.validations if split_of.get(r['dataset']) == split}
        records = [by_iter[it] for it in sorted(by_iter)]
        if records:
            splits[split] = {'final_psnr': records[-1]['psnr'], 'final_ssim': records[-1].get('ssim'),
                             'curve': [[r['wall_s'], r['iter'], r['psnr']] for r in records]}
    phases = run.phase_timing
    samples = sum(p['iters'] * p['batch_size_per_gpu'] for p in phases)
    compute_s = sum(p['iters'] * p['s_per_iter'] for p in phases if p['iters'])
    summary = {
        'name': label, 'wall_s': splits['val']['curve'][-1][0], 'final_psnr': splits['val']['final_psnr'],
        'final_ssim': splits['val']['final_ssim'], 'curve': splits['val']['curve'], 'splits': splits,
        'iters': splits['val']['curve'][-1][1],  # the run's last iteration (a sample-budget schedule: < total_iter)
        'batch_size_per_gpu': opt['datasets']['train']['batch_size_per_gpu'],
        'samples_per_s': samples / compute_s if compute_s else None, 'phases': phases,
        'precision': opt['train'].get('precision', 'fp32'), 'channels_last': opt['train'].get('channels_last', False),
    }
    density = [r['density'] for r in run.iterations if 'density' in r]
    if density:
        summary['density'] = density[-1]  # the sparse runs' share of non-zero channels
    return summary


def teacher_psnrs(experiment_root, opt):
    """{split: PSNR} of the teacher as a distillation run validated it (once per dataset)."""
    names = {split: opt['datasets'][key]['name'] for key, split in SPLIT_OF_DATASET.items() if key in opt['datasets']}
    records = {r['dataset']: r['psnr'] for r in read_run(experiment_root).validations}
    return {split: round(records[name + TEACHER_SUFFIX], 4) for split, name in names.items()
            if name + TEACHER_SUFFIX in records}


def spread(values):
    """Mean, min and max of the values that are not None (None when none is), and how many were None."""
    present = [v for v in values if v is not None]
    if not present:
        return {'mean': None, 'min': None, 'max': None, 'missing': len(values)}
    return {'mean': sum(present) / len(present), 'min': min(present), 'max': max(present),
            'missing': len(values) - len(present)}


def time_to_psnr(curve, target):
    """The first validated wall-clock time of a `[wall_s, iter, psnr]` curve at `target` dB or above, or None."""
    return next((wall for wall, _, psnr in curve if psnr >= target), None)


def compare(runs):
    """Relative costs against the baseline (the first run), and each run's speedup to the baseline's final PSNR;
    returns the second run's."""
    baseline = runs[0]
    baseline_s_per_iter = baseline['phases'][-1]['s_per_iter']
    for run in runs:
        for phase in run['phases']:
            phase['measured_rel_cost'] = (phase['s_per_iter'] / baseline_s_per_iter if phase['iters']
                                          else None)  # only steps that compiled (train.compile)
        reached = time_to_psnr(run['curve'], baseline['final_psnr'])
        run['speedup_to_baseline_psnr'] = baseline['wall_s'] / reached if reached else None
        run['psnr_drop_db'] = baseline['final_psnr'] - run['final_psnr']
    return {'speedup_to_baseline_psnr': runs[1]['speedup_to_baseline_psnr'], 'psnr_drop_db': runs[1]['psnr_drop_db']}


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


def budget_check(baseline_runs, bicubic, split):
    """Whether the baseline trained long enough to matter: its mean final PSNR on `split` (test when there is one)
    at least MIN_MARGIN_OVER_BICUBIC_DB above bicubic's."""
    baseline = spread([run['splits'][split]['final_psnr'] for run in baseline_runs])['mean']
    reference = bicubic.get(split)
    margin = baseline - reference if reference is not None else None
    return {'split': split, 'baseline_psnr': baseline, 'bicubic_psnr': reference, 'margin_db': margin,
            'long_enough': None if margin is None else margin >= MIN_MARGIN_OVER_BICUBIC_DB}


def bicubic_psnrs(opt):
    """{split: bicubic PSNR} as the demo data (demo_info.json) or a make_video_dataset.py folder records it; {}
    for other data (REDS, Vimeo-90K, a user's folder)."""
    root = data_root(opt)
    if osp.isfile(osp.join(root, 'demo_info.json')):
        with open(osp.join(root, 'demo_info.json')) as f:
            info = json.load(f)
        return {split: info[f'bicubic_{split}_psnr'] for split in ('val', 'test') if f'bicubic_{split}_psnr' in info}
    if osp.isfile(osp.join(root, 'dataset_info.json')):
        with open(osp.join(root, 'dataset_info.json')) as f:
            return json.load(f).get('bicubic_psnr', {})
    return {}
