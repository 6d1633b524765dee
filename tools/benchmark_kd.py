"""The pruning + distillation workflow of ST-MFNet Mini end to end on CPU, and the published pair's complexity.

    python tools/benchmark_kd.py --preset cpu --out kd.json --plot kd.png    # the whole workflow (demo data)
    python tools/benchmark_kd.py --out kd.json --complexity-only             # published pair: params, MACs, speed

The workflow, on the demo frame-interpolation data (windows of the demo videos, frames t, t+2, t+4, t+6 -> t+3;
validated on the held-out clips), with the CPU-scale ST-MFNet family of options/train/demo/:

1. the teacher (train_STMFNet_demo.yml), trained from scratch;
2. the sparse run (train_STMFNet_sparse_demo.yml): OBProxSG channel group lasso from the teacher's weights;
3. the width read-off (basicsr_multigrid/pruning.py): the student's widths are the surviving channels;
4. for each of --seeds seeds, the student at those widths (train_STMFNetMini_KD_demo.yml and
   train_STMFNetMini_demo.yml): distilled from the dense teacher (0.1 * Lap(S, GT) + Lap(S, T)), and trained on
   the ground truth alone, for the same iterations; both from their own initialisation (`student`,
   `student_no_kd`) and from the sparse network's surviving channels (`student_pruned_init`,
   `student_no_kd_pruned_init`); and the same pair at the student template's own widths
   (`student_template`, `student_no_kd_template`: ST-MFNet Mini's share of each width, whatever the sparse run
   kept), so that distillation is also measured on a student smaller than its teacher.

`--preset vsr-cpu` distils for video super-resolution instead, on the demo videos (validated on the val and
test clips): the demo BasicVSR (train_BasicVSR_demo.yml; or --teacher-weights) teaches a half-width student,
with a fixed shape (train_BasicVSR_KD_demo.yml) and on the multigrid schedule
(train_BasicVSR_multigrid_KD_demo.yml), each against the same student trained by the demo file without a
teacher, for --seeds seeds; `kd_gain_db` / `kd_gain_db_multigrid`: distilled minus no-KD PSNR per split and seed.
`--kd-variants gate feature` adds multigrid students distilled with the teacher-quality gate
(`train.distill_gate: teacher_better`) and with attention distillation of the propagation trunks on top of the
output distillation (`train.feature_distill_opt`, VSR_VARIANTS below), each with its `kd_gain_db_multigrid_<variant>`.

    python tools/benchmark_kd.py --preset vsr-cpu --out kd-vsr.json --plot kd-vsr.png [--kd-variants gate feature]

A finished run in --work-dir with the same options is reused (and the output says so): the teacher and the
sparse run always, the students when neither the teacher nor the sparse run had to be trained again (their
initial weights and teacher come from those runs), so an interrupted invocation continues where it stopped; never
a run that started before the weights it starts from (path.pretrain_network_g / _t) were last written.

`frame_average` is the plain mean of I1 and I2 on the same clips: the level a trained network must beat;
`dis_splat` is I1 and I2 splatted halfway along their DIS flows and averaged, with nothing trained: what the demo
family's flow branch (`flow_estimator: dis`) gives its network to start from. PSNR /
SSIM are each run's last validation; curves are PSNR against iteration. Complexity: `params` (learnable
parameters), `macs` (multiply-accumulates for one frame at --resolution: `macs_conv_linear`, mmengine's count of
the conv / linear layers, plus `macs_ops`, the AdaCoF / softsplat / correlation ops counted by
basicsr_multigrid/archs/ops/op_macs.py) and `ms_per_frame` (median of --repeats eval-mode forward passes on the
CPU, the networks taking turns so that both see the same machine load; the warping ops run fused, see
archs/ops/fused.py, and the untimed warm-up pass compiles them), next to `ms_per_frame_eager_ops` (the same with
`fused_ops: false`), `fused_max_abs_diff` (largest difference between the two outputs) and both speed ratios of
the published pair.
"""
import argparse
import copy
import json
import os
import statistics
import sys
import time
from os import path as osp

import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import basicsr_multigrid  # noqa: E402,F401  (compat fixes + registration)
from basicsr.utils.registry import ARCH_REGISTRY  # noqa: E402
from basicsr_multigrid import pruning  # noqa: E402
from basicsr_multigrid.archs.ops.op_macs import counting_op_macs  # noqa: E402
from basicsr_multigrid.utils.weights import read_weights  # noqa: E402
from basicsr_multigrid.training.cli import train_in_subprocess  # noqa: E402
from basicsr_multigrid.training.recorder import read_run  # noqa: E402
from basicsr_multigrid.utils.atomic_io import atomic_torch_save  # noqa: E402
from basicsr_multigrid.utils.benchmarking import machine_name  # noqa: E402
from basicsr_multigrid.utils.errors import OptionError  # noqa: E402
from basicsr_multigrid.utils.option_file import read_option_file  # noqa: E402

DEMO_OPTIONS = {
    'teacher': 'options/train/demo/train_STMFNet_demo.yml',
    'sparse': 'options/train/demo/train_STMFNet_sparse_demo.yml',
    'student': 'options/train/demo/train_STMFNetMini_KD_demo.yml',
    'student_no_kd': 'options/train/demo/train_STMFNetMini_demo.yml',
}
PRESETS = {  # iterations of each run; every run validates at val_points evenly spaced iterations
    # measured 2026-11-30 (DIS demo family, one thread per run, before the four template-width student runs were
    # added): about 142 min alone on one core, 95 min with two runs at a time: over the 90-minute budget
    'cpu': {'teacher_iters': 1200, 'sparse_iters': 200, 'student_iters': 400, 'seeds': 2, 'val_points': 6},
    # VSR: each run trains its option file's own total_iter (the teacher and fixed-shape students 400, the multigrid
    # students 460)
    'vsr-cpu': {'workflow': 'vsr', 'seeds': 1, 'val_points': 8},
}
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
PUBLISHED = {'teacher': {'type': 'STMFNet'}, 'mini': {'type': 'STMFNetMini'}}
SINGLE_PROCESS_IRRELEVANT = ('find_unused_parameters', )  # DDP-only: a run that differs only here is the same run
TARGETS = {'teacher_over_frame_average_db_min': 1.0, 'params_ratio_max': 0.10, 'student_gap_to_teacher_db_max': 0.5,
           'kd_gain_db_min': 0.1, 'published_speedup_min': 2.0}


def load_options(path):
    return read_option_file(osp.join(REPO_ROOT, path))


def build_network(network_opt):
    network_opt = dict(network_opt)
    return ARCH_REGISTRY.get(network_opt.pop('type'))(**network_opt).eval()


def count_params(network):
    return sum(p.numel() for p in network.parameters())


def count_macs(network, frames):
    """{'macs': total, 'macs_conv_linear': mmengine's count, 'macs_ops': {warping op: MACs}} for one forward."""
    from mmengine.analysis import get_model_complexity_info
    with torch.no_grad():
        info = get_model_complexity_info(network, inputs=(frames, ), show_table=False, show_arch=False)
        with counting_op_macs() as op_macs:  # a forward of its own: mmengine's analysers run the network twice
            network(frames)
    conv_linear = int(info['flops'])  # mmengine's "flops" counts one multiply-add as one
    return {'macs': conv_linear + sum(op_macs.values()), 'macs_conv_linear': conv_linear, 'macs_ops': dict(op_macs)}


def time_forward(networks, frames, repeats):
    """{label: median ms per interpolated frame}; the networks take turns so that load changes hit all alike."""
    times = {label: [] for label in networks}
    with torch.no_grad():
        for label, network in networks.items():  # warm-up: allocator, thread pool
            network(frames)
        for _ in range(repeats):
            for label, network in networks.items():
                started = time.perf_counter()
                network(frames)
                times[label].append((time.perf_counter() - started) * 1000 / frames.size(0))
    return {label: statistics.median(values) for label, values in times.items()}


def complexity(network_opts, resolution, repeats, macs=True):
    """{label: params, macs, ms_per_frame, ms_per_frame_eager_ops} of networks built from `network_opts` ({label:
    network option}); `ms_per_frame_eager_ops` times the same networks with `fused_ops` off, where they have it."""
    torch.manual_seed(0)
    frames = torch.rand(1, 4, 3, resolution, resolution)
    networks = {label: build_network(opt) for label, opt in network_opts.items()}
    speed = time_forward(networks, frames, repeats)
    fusing = {label: network for label, network in networks.items() if getattr(network, 'fused_ops', False)}
    for network in fusing.values():
        network.fused_ops = False
    eager_speed = time_forward(fusing, frames, repeats) if fusing else {}
    eager_frames = {label: forward(network, frames) for label, network in fusing.items()}
    for network in fusing.values():
        network.fused_ops = True
    fused_error = {label: float((forward(fusing[label], frames) - frame).abs().max())
                   for label, frame in eager_frames.items()}
    return {label: dict(params=count_params(network), ms_per_frame=round(speed[label], 2),
                        **({'ms_per_frame_eager_ops': round(eager_speed[label], 2),
                            'fused_max_abs_diff': fused_error[label]} if label in fusing else {}),
                        **(count_macs(network, frames) if macs else {}))
            for label, network in networks.items()}


def forward(network, frames):
    with torch.no_grad():
        return network(frames)


def published_complexity(resolution, repeats):
    measured = complexity(PUBLISHED, resolution, repeats)
    teacher, mini = measured['teacher'], measured['mini']
    return dict(measured, params_ratio=round(mini['params'] / teacher['params'], 4),
                speedup=round(teacher['ms_per_frame'] / mini['ms_per_frame'], 3),
                speedup_eager_ops=round(teacher['ms_per_frame_eager_ops'] / mini['ms_per_frame_eager_ops'], 3),
                resolution=resolution)


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


class Workflow:
    """Runs (or reuses) the training runs of the workflow one after the other in `work_dir`."""

    def __init__(self, options, data, preset, work_dir):
        self.options, self.data, self.preset, self.work_dir = options, data, preset, work_dir
        self.trained = []  # labels of the runs this invocation trained (not reused)

    def weights(self, name):
        return osp.join(self.work_dir, 'experiments', name, 'models', 'net_g_latest.pth')

    def run(self, label, opt, reuse=False):
        """Train `opt` (or, with `reuse`, find a finished run with the same options); returns its experiment root."""
        root = osp.join(self.work_dir, 'experiments', opt['name'])
        if reuse and finished_with(root, opt, osp.join(self.work_dir, f"{opt['name']}.yml")):
            print(f'{label}: reusing the finished run {root} (same options)', flush=True)
        else:
            print(f"{label}: training {opt['name']} for {opt['train']['total_iter']} iterations", flush=True)
            started = time.time()
            root = train_in_subprocess(opt, self.work_dir, osp.join(self.work_dir, f"{opt['name']}.log"))
            print(f'{label}: done in {time.time() - started:.0f} s', flush=True)
            self.trained.append(label)
        return root

    def teacher(self):
        opt = demo_run_options(self.options['teacher'], 'kd_bench_teacher', self.data, self.preset['teacher_iters'],
                               self.preset['val_points'])
        return opt, run_results(self.run('teacher', opt, reuse=True))

    def sparse(self, teacher_opt):
        opt = demo_run_options(self.options['sparse'], 'kd_bench_sparse', self.data, self.preset['sparse_iters'],
                               self.preset['val_points'])
        opt['network_g'] = copy.deepcopy(teacher_opt['network_g'])
        opt['path']['pretrain_network_g'] = self.weights(teacher_opt['name'])
        return opt, run_results(self.run('sparse', opt, reuse=True))

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
                runs[label].append(run_results(self.run(f'{label}{tag} seed {seed}', opt, reuse)))
        return runs


def read_off_student(sparse_opt, sparse_weights, student_template, init_path):
    """The student network option from the sparse run's surviving channels, the read-off widths, and the
    student's initial weights cut from those channels (written to `init_path`; how many tensors came from it)."""
    network = pruning.prunable_network(sparse_opt['network_g'])
    state = read_weights(sparse_weights, 'params', 'sparse run weights')[0]
    pruning.check_state_matches(network, state, f'sparse run weights {sparse_weights}')
    survivors = pruning.surviving_channels(network, state, threshold=0.0)
    widths = pruning.widths_of(survivors)
    pruning.check_no_width_emptied(widths, sparse_opt['train']['optim_g']['lambda_'])
    # a copy: student_arguments hands back (and changes) the option's own width lists
    _, arguments = pruning.student_arguments(copy.deepcopy(student_template), widths)
    student_network = dict(type=student_template['type'], **arguments)  # the template's flow branch, if any
    initial, kept = pruning.pruned_initial_state(sparse_opt['network_g'], state, survivors, student_network)
    if not same_weights(init_path, initial):  # rewritten only when changed: runs started from it stay reusable
        atomic_torch_save({'params': initial}, init_path)
    return student_network, widths, {'tensors_from_sparse_run': len(kept), 'tensors': len(initial)}


def run_results(experiment_root):
    """Last validation (PSNR, SSIM; the student's own, not its teacher's) and the PSNR curve of a run."""
    records = [r for r in read_run(experiment_root).validations if not r['dataset'].endswith('_teacher')]
    by_iter = {r['iter']: r for r in records}  # the final validation may repeat the last periodic one
    last = by_iter[max(by_iter)]
    run = {'psnr': round(last['psnr'], 4), 'ssim': round(last['ssim'], 4), 'iters': last['iter'],
           'train_s': round(last['wall_s'], 1),
           'curve': [[it, round(by_iter[it]['psnr'], 4)] for it in sorted(by_iter)]}
    density = [r['density'] for r in read_run(experiment_root).iterations if 'density' in r]
    if density:
        run['density'] = density[-1]
    return run


def finished_with(experiment_root, opt, used_options):
    """Whether the run in experiment_root used exactly `opt`, finished (has its final weights) and started after
    the weights it started from were last written (a run from an earlier sparse run's weights at the same path is
    not the same run)."""
    if not (osp.isfile(used_options) and osp.isfile(osp.join(experiment_root, 'models', 'net_g_latest.pth'))):
        return False
    used = read_option_file(used_options)
    if _without(used, SINGLE_PROCESS_IRRELEVANT) != _without(opt, SINGLE_PROCESS_IRRELEVANT):
        return False
    started = osp.getmtime(used_options)
    inputs = [opt['path'].get(key) for key in ('pretrain_network_g', 'pretrain_network_t')]
    return all(osp.getmtime(path) <= started for path in inputs if path and osp.isfile(path))


def same_weights(path, state):
    """Whether `path` holds exactly the tensors of `state` under 'params'."""
    if not osp.isfile(path):
        return False
    stored = torch.load(path, map_location='cpu', weights_only=True).get('params', {})
    return stored.keys() == state.keys() and all(torch.equal(stored[key], state[key]) for key in state)


def _without(opt, keys):
    return {k: v for k, v in opt.items() if k not in keys}


def frame_average(i1, i2):
    """The plain average of I1 and I2: what a trained network must beat."""
    return (i1 + i2) / 2


def dis_splat_average(i1, i2):
    """Interpolation without learning: I1 and I2 splatted halfway along their DIS flows (bilinear weights summed,
    both frames together), the frame average where nothing lands. What the demo family's flow branch hands its
    GridNet before any training."""
    from basicsr_multigrid.archs.dis_flow import DISFlow
    from basicsr_multigrid.archs.ops import softsplat
    first, second = i1[None], i2[None]
    flow = DISFlow()
    landed = sum(softsplat(torch.cat([frame, torch.ones_like(frame[:, :1])], dim=1), 0.5 * flow(frame, other),
                           mode='summation') for frame, other in ((first, second), (second, first)))[0]
    weight = landed[3:]
    return torch.where(weight > 1e-3, landed[:3] / weight.clamp(min=1e-3), frame_average(i1, i2))


def baseline_metrics(val_opt, interpolate):
    """PSNR / SSIM on the validation set of `interpolate(I1, I2)`, a method with nothing to train."""
    from basicsr.metrics import calculate_psnr, calculate_ssim
    from basicsr.utils import tensor2img
    from basicsr_multigrid.data.vfi_test_dataset import VFITestDataset
    dataset = VFITestDataset(dict(val_opt, phase='val'))
    psnr, ssim = [], []
    for index in range(len(dataset)):
        item = dataset[index]
        output, target = tensor2img([interpolate(item['lq'][1], item['lq'][2])]), tensor2img([item['gt']])
        psnr.append(calculate_psnr(output, target, crop_border=0))
        ssim.append(calculate_ssim(output, target, crop_border=0))
    return {'psnr': round(float(statistics.mean(psnr)), 4), 'ssim': round(float(statistics.mean(ssim)), 4)}


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


def workflow(args, preset):
    options = {label: load_options(path) for label, path in DEMO_OPTIONS.items()}
    data, work_dir = osp.abspath(args.data), osp.abspath(args.work_dir)
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
    sizes = complexity(networks, args.demo_resolution, args.repeats, macs=False)
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


VSR_STUDENTS = ('student', 'student_no_kd', 'student_multigrid', 'student_no_kd_multigrid')


def vsr_run_options(opt, name, data, val_points, seed=None):
    """A shipped VSR demo option file pointed at `data` (validating its test split too, when it has one), with the
    multigrid benchmark's logging: validation at `val_points` evenly spaced iterations of its own total_iter."""
    import benchmark_multigrid
    opt = benchmark_multigrid.prepare_run(opt, name, val_points)
    benchmark_multigrid.use_data(opt, data)
    benchmark_multigrid.with_test_split(opt)
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


def teacher_scores(experiment_root, opt):
    """{split: PSNR} of the teacher as a distillation run validated it once (`<val set name>_teacher`)."""
    names = {'val': opt['datasets']['val']['name'], 'test': (opt['datasets'].get('val_2') or {}).get('name')}
    records = {r['dataset']: r['psnr'] for r in read_run(experiment_root).validations}
    return {split: round(records[f'{name}_teacher'], 4) for split, name in names.items()
            if f'{name}_teacher' in records}


def vsr_seed_summary(summaries, network_opt):
    """The runs of one student over seeds (benchmark_multigrid.summarize_run each): mean test / val PSNR,
    per-seed values, wall time and test curves ([wall_s, iter, psnr])."""
    splits = [split for split in ('test', 'val') if all(split in run['splits'] for run in summaries)]
    per_seed = {split: [round(run['splits'][split]['final_psnr'], 4) for run in summaries] for split in splits}
    return {'params': count_params(build_network(network_opt)), 'network': network_opt,
            'psnr': {split: round(statistics.mean(values), 4) for split, values in per_seed.items()},
            'psnr_per_seed': per_seed, 'wall_s': [round(run['wall_s'], 1) for run in summaries],
            'iters': summaries[0]['iters'], 'curves': [run['splits'][splits[0]]['curve'] for run in summaries]}


def vsr_workflow(args, preset):
    """The demo BasicVSR (trained here, or --teacher-weights) distilled into a half-width student, with and
    without a multigrid schedule, against the same students trained without a teacher, for each seed."""
    import benchmark_multigrid
    options = {label: load_options(path) for label, path in VSR_OPTIONS.items()}
    data, work_dir = osp.abspath(args.data), osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    steps = Workflow(options, data, preset, work_dir)
    teacher = {'params': count_params(build_network(options['teacher']['network_g']))}
    if args.teacher_weights:
        teacher_weights = osp.abspath(args.teacher_weights)
        read_weights(teacher_weights, 'params', '--teacher-weights')  # one line when missing or unreadable
    else:
        teacher_opt = vsr_run_options(options['teacher'], 'kd_vsr_teacher', data, preset['val_points'])
        root = steps.run('teacher', teacher_opt, reuse=True)
        teacher_weights = steps.weights(teacher_opt['name'])
        teacher['curve'] = benchmark_multigrid.summarize_run(root, 'teacher', teacher_opt)['curve']
    teacher['weights'] = teacher_weights
    reuse = 'teacher' not in steps.trained
    labels = vsr_labels(args.kd_variants)
    summaries = {label: [] for label in labels}
    for seed in range(preset['seeds']):
        for label in labels:
            opt = vsr_run_options(vsr_student_options(options, label, teacher_weights), f'kd_vsr_{label}_seed{seed}',
                                  data, preset['val_points'], seed)
            root = steps.run(f'{label} seed {seed}', opt, reuse)
            summaries[label].append(benchmark_multigrid.summarize_run(root, label, opt))
            if label == 'student' and seed == 0:
                teacher['psnr'] = teacher_scores(root, opt)
    result = {'task': 'vsr', 'teacher': teacher, 'seeds': preset['seeds'],
              'bicubic': benchmark_multigrid.bicubic_psnrs(vsr_run_options(options['teacher'], 'bicubic', data, 1))}
    for label in labels:
        result[label] = vsr_seed_summary(summaries[label], vsr_student_network(options, label))
    gains = {'': ('student', 'student_no_kd'), '_multigrid': ('student_multigrid', 'student_no_kd_multigrid')}
    gains.update({f'_multigrid_{variant}': (f'student_multigrid_{variant}', 'student_no_kd_multigrid')
                  for variant in args.kd_variants})
    for suffix, (distilled, no_teacher) in gains.items():
        kd, no_kd = result[distilled]['psnr_per_seed'], result[no_teacher]['psnr_per_seed']
        result[f'kd_gain_db{suffix}'] = {split: [round(a - b, 4) for a, b in zip(kd[split], no_kd[split])]
                                         for split in kd}
    result['kd_variants'] = list(args.kd_variants)
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


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', required=True, help='JSON file to write')
    parser.add_argument('--plot', help='PNG: PSNR against iteration of teacher and students')
    parser.add_argument('--preset', choices=sorted(PRESETS), default='cpu', help='iterations of the workflow runs')
    parser.add_argument('--teacher-iters', type=int, help="override the preset's teacher iterations")
    parser.add_argument('--sparse-iters', type=int, help="override the preset's sparse-run iterations")
    parser.add_argument('--student-iters', type=int, help="override the preset's student iterations")
    parser.add_argument('--seeds', type=int, help="override the preset's number of student seeds")
    parser.add_argument('--teacher-weights', help='vsr-cpu: distil from these weights instead of training the teacher')
    parser.add_argument('--kd-variants', nargs='+', choices=sorted(VSR_VARIANTS), default=[],
                        help='vsr-cpu: also the multigrid student distilled with these variants (see VSR_VARIANTS)')
    parser.add_argument('--data', default='datasets/demo', help='demo data (built by tools/make_demo_data.py)')
    parser.add_argument('--resolution', type=int, default=256, help='frame size of the published pair measurement')
    parser.add_argument('--demo-resolution', type=int, default=256, help='frame size of the CPU family measurement')
    parser.add_argument('--repeats', type=int, default=5, help='timed forward passes per network')
    parser.add_argument('--work-dir', default='experiments/benchmark_kd', help='where the training runs go')
    parser.add_argument('--complexity-only', action='store_true', help='only the published pair: params, MACs, speed')
    return parser.parse_args(argv)


def preset_of(args):
    preset = dict(PRESETS[args.preset])
    vsr = preset.get('workflow') == 'vsr'
    if args.teacher_weights and not vsr:
        raise OptionError(f'--teacher-weights: only the vsr-cpu preset takes a trained teacher, not {args.preset}')
    if args.kd_variants and not vsr:
        raise OptionError(f'--kd-variants: only the vsr-cpu preset has distillation variants, not {args.preset}')
    for key in ('teacher_iters', 'sparse_iters', 'student_iters', 'seeds'):
        value = getattr(args, key)
        if value is not None and vsr and key != 'seeds':
            raise OptionError(f"--{key.replace('_', '-')}: the {args.preset} preset trains each option file's own "
                              'total_iter')
        if value is not None:
            if value < 1:
                raise OptionError(f"--{key.replace('_', '-')}: must be >= 1, got {value}")
            preset[key] = value
    return preset


def main(argv=None):
    args = parse_args(argv)
    try:
        preset = preset_of(args)
        if not args.complexity_only and not osp.isfile(osp.join(args.data, 'meta_info_val.txt')):
            raise OptionError(f'--data: no demo data in {args.data}; build it with: python tools/make_demo_data.py '
                              f'--out {args.data}')
        torch.set_num_threads(len(os.sched_getaffinity(0)))  # the cores this process may use (taskset, slurm)
        vsr = preset.get('workflow') == 'vsr'
        if vsr and args.complexity_only:
            raise OptionError(f'--complexity-only: measures the published ST-MFNet pair, not the {args.preset} preset')
        result = {} if args.complexity_only else (vsr_workflow if vsr else workflow)(args, preset)
    except OptionError as error:
        sys.exit(f'error: {error}')
    settings = {'threads': torch.get_num_threads()}
    if not args.complexity_only:
        settings.update(preset, preset=args.preset)
    if not vsr:  # the targets are the frame-interpolation workflow's and the published pair's
        result['published'] = published_complexity(args.resolution, args.repeats)
        result.update(targets=TARGETS, targets_met=targets_met(result))
        settings.update(resolution=args.resolution, repeats=args.repeats)
    result.update(machine=machine_name(), date=time.strftime('%Y-%m-%d'), settings=settings)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=1)
        f.write('\n')
    if args.plot and not args.complexity_only:
        (vsr_plot if vsr else plot)(result, args.plot)
    if vsr:
        print(vsr_summary_table(result))
        return
    print(json.dumps({k: result[k] for k in ('published', 'targets_met')}, indent=1))
    if not args.complexity_only:
        print(summary_table(result))


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


if __name__ == '__main__':
    main()
