"""Distillation for video super-resolution on the demo videos: the demo BasicVSR (trained here, or given) teaches a
half-width student, with a fixed shape and on the multigrid schedule, each against the same student trained without
a teacher, for every seed (tools/benchmark_kd.py --preset vsr-cpu is its command line)."""
import copy
import os
import statistics
from os import path as osp

from basicsr_multigrid.benchmarks import runs as run_options
from basicsr_multigrid.benchmarks.complexity import build_network, count_params
from basicsr_multigrid.benchmarks.runs import Runs, load_options, portable_path
from basicsr_multigrid.benchmarks.summaries import bicubic_psnrs, summarize_run, teacher_psnrs
from basicsr_multigrid.utils.weights import read_weights

PRESET = {'workflow': 'vsr', 'seeds': 1, 'val_points': 8}  # each run trains its option file's own total_iter

VSR_OPTIONS = {  # --preset vsr-cpu: the demo BasicVSR teaches a half-width student, fixed shape and multigrid
    'teacher': 'options/train/demo/train_BasicVSR_demo.yml',
    'student': 'options/train/demo/train_BasicVSR_KD_demo.yml',
    'student_no_kd': 'options/train/demo/train_BasicVSR_demo.yml',  # with the student's network_g
    'student_multigrid': 'options/train/demo/train_BasicVSR_multigrid_KD_demo.yml',
    'student_no_kd_multigrid': 'options/train/demo/train_BasicVSR_multigrid_demo.yml',
}
VSR_VARIANTS = {  # --kd-variants: train options added to the multigrid distilled student's
    'gate': {'distill_gate': 'teacher_better'},
    # attention maps of the backward and forward trunks at every frame, L1; weight 1 puts the term at 0.6x the output
    # distillation loss of an untrained student (0.022 vs 0.038 on a demo training clip; not tuned)
    'feature': {'feature_distill_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean',
                                        'mode': 'attention',
                                        'layers': {'backward_trunk': 'backward_trunk',
                                                   'forward_trunk': 'forward_trunk'}}},
}
VSR_STUDENTS = ('student', 'student_no_kd', 'student_multigrid', 'student_no_kd_multigrid')


def vsr_run_options(opt, name, data, val_points, seed=None):
    """A shipped VSR demo option file pointed at `data` (validating its test split too, when it has one), with the
    benchmarks' logging: validation at `val_points` evenly spaced iterations of its own total_iter."""
    opt = run_options.benchmark_logging(opt, name, val_points)
    run_options.use_data(opt, data)
    run_options.with_test_split(opt)
    if seed is not None:
        opt['manual_seed'] = seed
    return opt


def vsr_labels(variants):
    """The four plain students, then the multigrid distilled student of each --kd-variants variant."""
    return VSR_STUDENTS + tuple(f'student_multigrid_{variant}' for variant in variants)


def vsr_variant(label):
    """'gate' for 'student_multigrid_gate'; None for the four plain students."""
    return next((variant for variant in VSR_VARIANTS if label == f'student_multigrid_{variant}'), None)


def vsr_option_label(label):
    """The VSR_OPTIONS entry a student's options come from (a variant's: the multigrid distilled student's)."""
    return 'student_multigrid' if vsr_variant(label) else label


def vsr_student_network(options, label):
    """The no-KD students train the distilled student's network_g; the others their own file's."""
    return options['student' if label.startswith('student_no_kd') else vsr_option_label(label)]['network_g']


def vsr_student_options(options, label, teacher_weights):
    """The distilled students learn from the teacher option file's network, loaded from `teacher_weights`; a
    variant adds its VSR_VARIANTS train options."""
    opt = copy.deepcopy(options[vsr_option_label(label)])
    opt['network_g'] = copy.deepcopy(vsr_student_network(options, label))
    variant = vsr_variant(label)
    if variant:
        opt['train'].update(copy.deepcopy(VSR_VARIANTS[variant]))
    if not label.startswith('student_no_kd'):
        opt['network_t'] = copy.deepcopy(options['teacher']['network_g'])
        opt['path']['pretrain_network_t'] = teacher_weights
    return opt


def vsr_seed_summary(summaries, network_opt):
    """The runs of one student over seeds (summaries.summarize_run each): mean test / val PSNR,
    per-seed values, wall time and test curves ([wall_s, iter, psnr])."""
    splits = [split for split in ('test', 'val') if all(split in run['splits'] for run in summaries)]
    per_seed = {split: [round(run['splits'][split]['final_psnr'], 4) for run in summaries] for split in splits}
    return {'params': count_params(build_network(network_opt)), 'network': network_opt,
            'psnr': {split: round(statistics.mean(values), 4) for split, values in per_seed.items()},
            'psnr_per_seed': per_seed, 'wall_s': [round(run['wall_s'], 1) for run in summaries],
            'iters': summaries[0]['iters'], 'curves': [run['splits'][splits[0]]['curve'] for run in summaries]}


def run_workflow(data, work_dir, preset, teacher_weights=None, kd_variants=()):
    """The demo BasicVSR (trained here, or `teacher_weights`) distilled into a half-width student, with and
    without a multigrid schedule, against the same students trained without a teacher, for each seed."""
    options = {label: load_options(path) for label, path in VSR_OPTIONS.items()}
    data, work_dir = osp.abspath(data), osp.abspath(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    steps = Runs(work_dir)
    teacher = {'params': count_params(build_network(options['teacher']['network_g']))}
    if teacher_weights:
        teacher_weights = osp.abspath(teacher_weights)
        read_weights(teacher_weights, 'params', '--teacher-weights')  # one line when missing or unreadable
    else:
        teacher_opt = vsr_run_options(options['teacher'], 'kd_vsr_teacher', data, preset['val_points'])
        root = steps.run('teacher', teacher_opt, reuse=True)
        teacher_weights = steps.weights(teacher_opt['name'])
        teacher['curve'] = summarize_run(root, 'teacher', teacher_opt)['curve']
    teacher['weights'] = portable_path(teacher_weights, work_dir)
    reuse = 'teacher' not in steps.trained
    labels = vsr_labels(kd_variants)
    summaries = {label: [] for label in labels}
    for seed in range(preset['seeds']):
        for label in labels:
            opt = vsr_run_options(vsr_student_options(options, label, teacher_weights), f'kd_vsr_{label}_seed{seed}',
                                  data, preset['val_points'], seed)
            root = steps.run(f'{label} seed {seed}', opt, reuse)
            summaries[label].append(summarize_run(root, label, opt))
            if label == 'student' and seed == 0:
                teacher['psnr'] = teacher_psnrs(root, opt)
    result = {'task': 'vsr', 'teacher': teacher, 'seeds': preset['seeds'],
              'bicubic': bicubic_psnrs(vsr_run_options(options['teacher'], 'bicubic', data, 1))}
    for label in labels:
        result[label] = vsr_seed_summary(summaries[label], vsr_student_network(options, label))
    gains = {'': ('student', 'student_no_kd'), '_multigrid': ('student_multigrid', 'student_no_kd_multigrid')}
    gains.update({f'_multigrid_{variant}': (f'student_multigrid_{variant}', 'student_no_kd_multigrid')
                  for variant in kd_variants})
    for suffix, (distilled, no_teacher) in gains.items():
        kd, no_kd = result[distilled]['psnr_per_seed'], result[no_teacher]['psnr_per_seed']
        result[f'kd_gain_db{suffix}'] = {split: [round(a - b, 4) for a, b in zip(kd[split], no_kd[split])]
                                         for split in kd}
    result['kd_variants'] = list(kd_variants)
    return result


def vsr_plot(result, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, colour, name in (('student', 'tab:blue', 'distilled, fixed shape'),
                                ('student_no_kd', 'tab:orange', 'no teacher, fixed shape'),
                                ('student_multigrid', 'tab:green', 'distilled, multigrid'),
                                ('student_no_kd_multigrid', 'tab:red', 'no teacher, multigrid'),
                                ('student_multigrid_gate', 'tab:purple', 'distilled, multigrid, gated'),
                                ('student_multigrid_feature', 'tab:brown', 'distilled, multigrid, + attention')):
        if label not in result:
            continue
        for seed, curve in enumerate(result[label]['curves']):
            wall, _, psnrs = zip(*curve)
            ax.plot(wall, psnrs, marker='o', markersize=3, color=colour, alpha=1.0 if seed == 0 else 0.5,
                    label=f"{name} ({result[label]['params']:,} params, seed {seed})")
    split = 'test' if 'test' in result['teacher'].get('psnr', {}) else 'val'
    if split in result['teacher'].get('psnr', {}):
        ax.axhline(result['teacher']['psnr'][split], color='black', label=f"teacher ({result['teacher']['params']:,} "
                                                                          'params)')
    if split in result['bicubic']:
        ax.axhline(result['bicubic'][split], color='grey', linestyle='--', label='bicubic')
    ax.set_xlabel('wall-clock seconds (each run)')
    ax.set_ylabel(f'PSNR on the {split} clips (dB)')
    gains = ', '.join(f"{g:+.3f}" for g in result['kd_gain_db'].get(split, []))
    mg_gains = ', '.join(f"{g:+.3f}" for g in result['kd_gain_db_multigrid'].get(split, []))
    ax.set_title(f"BasicVSR -> half-width student on {result['machine']} ({result['date']})\n"
                 f"KD gain on {split} per seed: fixed shape {gains}, multigrid {mg_gains} dB", fontsize=9)
    ax.legend(fontsize=8, loc='lower right')
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def vsr_summary_table(result):
    rows = ['| | params | iterations | wall s (per seed) | test PSNR (dB) | val PSNR (dB) |',
            '|---|---|---|---|---|---|']
    teacher = result['teacher']
    rows.append(f"| teacher | {teacher['params']:,} | | | {teacher.get('psnr', {}).get('test', '')} | "
                f"{teacher.get('psnr', {}).get('val', '')} |")
    for label in vsr_labels(result['kd_variants']):
        run = result[label]
        per_seed, walls = run['psnr_per_seed'], ' / '.join(f'{w:.0f}' for w in run['wall_s'])
        rows.append(f"| {label} | {run['params']:,} | {run['iters']} | {walls} | "
                    f"{' / '.join(f'{p:.3f}' for p in per_seed.get('test', []))} | "
                    f"{' / '.join(f'{p:.3f}' for p in per_seed.get('val', []))} |")
    bicubic = result['bicubic']
    rows.append(f"| bicubic | | | | {bicubic.get('test', '')} | {bicubic.get('val', '')} |")
    return '\n'.join(rows)
