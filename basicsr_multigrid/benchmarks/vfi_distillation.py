"""The pruning + distillation workflow of ST-MFNet Mini on the demo frame-interpolation data, end to end on CPU
(tools/benchmark_kd.py is its command line; its help says what the runs are):

teacher -> sparse run (OBProxSG channel group lasso from the teacher) -> width read-off (pruning.read_off) ->
students at the read-off widths (own initialisation, and the sparse network's surviving channels) and at the
template's widths, each distilled and trained without a teacher, for every seed; frame average and DIS splatting on
the same clips."""
import copy
import os
import statistics
from os import path as osp

from basicsr_multigrid import pruning
from basicsr_multigrid.benchmarks.complexity import complexity, published_complexity
from basicsr_multigrid.benchmarks.runs import Runs, load_options, same_weights
from basicsr_multigrid.benchmarks.summaries import summarize_run
from basicsr_multigrid.benchmarks.vfi_baselines import baseline_metrics, dis_splat_average, frame_average
from basicsr_multigrid.utils.atomic_io import atomic_torch_save
from basicsr_multigrid.utils.weights import read_weights

DEMO_OPTIONS = {
    'teacher': 'options/train/demo/train_STMFNet_demo.yml',
    'sparse': 'options/train/demo/train_STMFNet_sparse_demo.yml',
    'student': 'options/train/demo/train_STMFNetMini_KD_demo.yml',
    'student_no_kd': 'options/train/demo/train_STMFNetMini_demo.yml',
}
# measured 2026-11-30 (DIS demo family, one thread per run, before the four template-width student runs were added):
# about 142 min alone on one core, 95 min with two runs at a time: over the 90-minute budget
PRESET = {'teacher_iters': 1200, 'sparse_iters': 200, 'student_iters': 400, 'seeds': 2, 'val_points': 6}
TARGETS = {'teacher_over_frame_average_db_min': 1.0, 'params_ratio_max': 0.10, 'student_gap_to_teacher_db_max': 0.5,
           'kd_gain_db_min': 0.1, 'published_speedup_min': 2.0}


def demo_run_options(opt, name, data, iters, val_points, seed=None):
    """The shipped demo options pointed at `data`, for `iters` iterations, validating at `val_points` evenly
    spaced iterations; LR milestones stay at the same fractions of the run."""
    opt = copy.deepcopy(opt)
    opt['name'] = name
    for phase, split in (('train', 'train'), ('val', 'val')):
        dataset = opt['datasets'][phase]
        dataset['dataroot'] = osp.join(data, split, 'GT')
        dataset['meta_info_file'] = osp.join(data, f'meta_info_{split}.txt')
    train = opt['train']
    train['scheduler']['milestones'] = [max(1, m * iters // int(train['total_iter']))
                                        for m in train['scheduler']['milestones']]
    train['total_iter'] = iters
    opt['val']['val_freq'] = max(1, iters // val_points)
    opt['logger'].update(save_checkpoint_freq=iters, use_tb_logger=False, print_freq=max(1, iters // 20))
    if seed is not None:
        opt['manual_seed'] = seed
    return opt


class Workflow(Runs):
    """The workflow's runs, trained (or reused) one after the other in `work_dir`."""

    def __init__(self, options, data, preset, work_dir):
        super().__init__(work_dir)
        self.options, self.data, self.preset = options, data, preset

    def teacher(self):
        opt = demo_run_options(self.options['teacher'], 'kd_bench_teacher', self.data, self.preset['teacher_iters'],
                               self.preset['val_points'])
        return opt, run_results(self.run('teacher', opt, reuse=True), opt)

    def sparse(self, teacher_opt):
        opt = demo_run_options(self.options['sparse'], 'kd_bench_sparse', self.data, self.preset['sparse_iters'],
                               self.preset['val_points'])
        opt['network_g'] = copy.deepcopy(teacher_opt['network_g'])
        opt['path']['pretrain_network_g'] = self.weights(teacher_opt['name'])
        return opt, run_results(self.run('sparse', opt, reuse=True), opt)

    def students(self, teacher_opt, student_network, seeds, tag='', init_weights=None):
        """{label: [results per seed]} of the distilled student and the no-KD student of `student_network`, from
        their own initialisation or from `init_weights` (the sparse network's surviving channels); `tag` names
        the variant in the run names."""
        runs = {'student': [], 'student_no_kd': []}
        reuse = not {'teacher', 'sparse'} & set(self.trained)
        for seed in range(seeds):
            for label, suffix in (('student', 'kd'), ('student_no_kd', 'no_kd')):
                opt = demo_run_options(self.options[label], f'kd_bench_{suffix}{tag}_seed{seed}', self.data,
                                       self.preset['student_iters'], self.preset['val_points'], seed=seed)
                opt['network_g'] = copy.deepcopy(student_network)
                opt['path']['pretrain_network_g'] = init_weights
                if label == 'student':
                    opt['network_t'] = copy.deepcopy(teacher_opt['network_g'])
                    opt['path']['pretrain_network_t'] = self.weights(teacher_opt['name'])
                runs[label].append(run_results(self.run(f'{label}{tag} seed {seed}', opt, reuse), opt))
        return runs


def read_off_student(sparse_opt, sparse_weights, student_template, init_path):
    """The student network option from the sparse run's surviving channels, the read-off widths, and the
    student's initial weights cut from those channels (written to `init_path`; how many tensors came from it)."""
    state = read_weights(sparse_weights, 'params', 'sparse run weights')[0]
    read = pruning.read_off(sparse_opt, state, student_template, source=f'sparse run weights {sparse_weights}')
    initial, kept = pruning.initial_state_of(sparse_opt, state, read)
    if not same_weights(init_path, initial):  # rewritten only when changed: runs started from it stay reusable
        atomic_torch_save({'params': initial}, init_path)
    return read.student_network, read.widths, {'tensors_from_sparse_run': len(kept), 'tensors': len(initial)}


def run_results(experiment_root, opt):
    """The run's last validation (PSNR, SSIM), its training seconds and PSNR curve `[iter, psnr]`, from its summary."""
    summary = summarize_run(experiment_root, opt['name'], opt)
    run = {'psnr': round(summary['final_psnr'], 4), 'ssim': round(summary['final_ssim'], 4),
           'iters': summary['curve'][-1][1], 'train_s': round(summary['wall_s'], 1),
           'curve': [[it, round(psnr, 4)] for _, it, psnr in summary['curve']]}
    if 'density' in summary:
        run['density'] = summary['density']
    return run


def seed_summary(runs):
    """The runs of one network over seeds: mean PSNR / SSIM, per-seed values and curves."""
    return {'psnr': round(statistics.mean(r['psnr'] for r in runs), 4),
            'ssim': round(statistics.mean(r['ssim'] for r in runs), 4),
            'psnr_per_seed': [r['psnr'] for r in runs], 'curves': [r['curve'] for r in runs],
            'iters': runs[0]['iters']}


def targets_met(result):
    met = {}
    if 'published' in result:
        met['published_speedup'] = result['published']['speedup'] >= TARGETS['published_speedup_min']
    if 'teacher' in result:
        teacher = result['teacher']
        met['teacher_over_frame_average'] = (teacher['psnr'] - result['frame_average']['psnr']
                                             >= TARGETS['teacher_over_frame_average_db_min'])
        met['params_ratio'] = result['student']['params'] / teacher['params'] <= TARGETS['params_ratio_max']
        # the targets are the read-off student's (first); the same measures of the other students follow
        for suffix in ('', '_pruned_init', '_template'):
            if f'student{suffix}' not in result:
                continue
            met[f'student_gap_to_teacher{suffix}'] = all(
                teacher['psnr'] - psnr <= TARGETS['student_gap_to_teacher_db_max']
                for psnr in result[f'student{suffix}']['psnr_per_seed'])
            met[f'kd_gain{suffix}'] = all(gain >= TARGETS['kd_gain_db_min'] for gain in result[f'kd_gain_db{suffix}'])
    return met


def results(data, work_dir, preset, demo_resolution, resolution, repeats, workflow=True):
    """What the JSON holds: the workflow (unless `workflow` is False), the published pair's complexity at
    `resolution`, the targets and which were met."""
    result = run_workflow(data, work_dir, preset, demo_resolution, repeats) if workflow else {}
    result['published'] = published_complexity(resolution, repeats)
    result.update(targets=TARGETS, targets_met=targets_met(result))
    return result


def run_workflow(data, work_dir, preset, demo_resolution, repeats):
    """Every run of the workflow (reusing finished ones), the baselines and the sizes: the results the JSON holds."""
    options = {label: load_options(path) for label, path in DEMO_OPTIONS.items()}
    data, work_dir = osp.abspath(data), osp.abspath(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    steps = Workflow(options, data, preset, work_dir)
    teacher_opt, teacher = steps.teacher()
    sparse_opt, sparse = steps.sparse(teacher_opt)
    init_path = osp.join(work_dir, 'kd_bench_student_init.pth')
    student_network, widths, init_counts = read_off_student(sparse_opt, steps.weights(sparse_opt['name']),
                                                            options['student']['network_g'], init_path)
    print('read-off widths: ' + ', '.join(f'{key} {old} -> {kept}' for key, (old, kept) in widths.items()), flush=True)
    template_network = options['student']['network_g']
    networks = {'teacher': teacher_opt['network_g'], 'student': student_network, 'student_template': template_network}
    sizes = complexity(networks, demo_resolution, repeats, macs=False)
    result = {'teacher': dict(teacher, **sizes['teacher'], network=teacher_opt['network_g']),
              'sparse': dict(sparse, widths={key: kept for key, (_, kept) in widths.items()}, init=init_counts)}
    # the read-off student from its own and from the sparse weights; the template's own widths (ST-MFNet Mini's
    # share of each width) as well, so that distillation is also measured on a student smaller than its teacher
    for suffix, network, init in (('', student_network, None), ('_pruned_init', student_network, init_path),
                                  ('_template', template_network, None)):
        students = steps.students(teacher_opt, network, preset['seeds'], suffix, init)
        size = sizes['student_template' if suffix == '_template' else 'student']
        result[f'student{suffix}'] = dict(seed_summary(students['student']), **size, network=network)
        result[f'student_no_kd{suffix}'] = dict(seed_summary(students['student_no_kd']), params=size['params'])
        result[f'kd_gain_db{suffix}'] = [round(kd['psnr'] - no_kd['psnr'], 4)
                                         for kd, no_kd in zip(students['student'], students['student_no_kd'])]
    result['seeds'] = preset['seeds']
    val_opt = demo_run_options(options['teacher'], 'frame_average', data, 1, 1)['datasets']['val']
    result['frame_average'] = baseline_metrics(val_opt, frame_average)
    result['dis_splat'] = baseline_metrics(val_opt, dis_splat_average)
    return result


def plot(result, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5))
    iters, psnrs = zip(*result['teacher']['curve'])
    ax.plot(iters, psnrs, marker='o', color='black', label=f"teacher ({result['teacher']['params']:,} params)")
    for label, colour, name in (('student', 'tab:blue', 'distilled'), ('student_no_kd', 'tab:orange', 'no teacher'),
                                ('student_pruned_init', 'tab:green', 'distilled, pruned init'),
                                ('student_no_kd_pruned_init', 'tab:red', 'no teacher, pruned init'),
                                ('student_template', 'tab:purple', "distilled, template's widths"),
                                ('student_no_kd_template', 'tab:brown', "no teacher, template's widths")):
        for seed, curve in enumerate(result[label]['curves']):
            iters, psnrs = zip(*curve)
            ax.plot(iters, psnrs, marker='o', markersize=3, color=colour, alpha=1.0 if seed == 0 else 0.5,
                    label=f'student: {name} (seed {seed})')
    ax.axhline(result['frame_average']['psnr'], color='grey', linestyle='--', label='average of I1 and I2')
    if 'dis_splat' in result:
        ax.axhline(result['dis_splat']['psnr'], color='grey', linestyle=':', label='I1, I2 splatted along DIS flows')
    ax.set_xlabel('iteration (each run)')
    ax.set_ylabel('PSNR on the held-out clips (dB)')
    gains = ', '.join(f'{g:+.2f}' for g in result['kd_gain_db'])
    ax.set_title(f"ST-MFNet -> pruned student on {result['machine']} ({result['date']}); KD gain per seed: {gains} dB",
                 fontsize=9)
    ax.legend(fontsize=8, loc='lower right')
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def summary_table(result):
    rows = ['| | params | CPU ms / frame | PSNR (dB) | SSIM |', '|---|---|---|---|---|']
    for label in ('teacher', 'student', 'student_no_kd', 'student_pruned_init', 'student_no_kd_pruned_init',
                  'student_template', 'student_no_kd_template'):
        run = result[label]
        rows.append(f"| {label} | {run['params']:,} | {run.get('ms_per_frame', '')} | {run['psnr']:.3f} | "
                    f"{run['ssim']:.4f} |")
    for label, name in (('frame_average', 'frame average'), ('dis_splat', 'DIS splatting, no network')):
        if label in result:
            rows.append(f"| {name} | | | {result[label]['psnr']:.3f} | {result[label]['ssim']:.4f} |")
    return '\n'.join(rows)
