"""Teacher vs distilled student: size, compute, CPU speed and quality on the held-out demo clips.

    python tools/benchmark_kd.py --out kd.json                       # train all three runs, then measure
    python tools/benchmark_kd.py --out kd.json --complexity-only     # params, MACs and speed only

Training (on the demo frame-interpolation data: windows of the demo videos, frames t, t+2, t+4, t+6 -> t+3),
one run after the other, each for --iters iterations with the same seed and data:

1. the teacher (options/train/demo/train_STMFNet_demo.yml), trained from scratch;
2. the student distilled from it (train_STMFNetMini_KD_demo.yml: 0.1 * Lap(S, GT) + Lap(S, T));
3. the same student trained on the ground truth alone (train_STMFNetMini_demo.yml), for comparison.

`frame_average` is the plain mean of I1 and I2 on the same clips: the level a trained network must beat.

PSNR / SSIM are those of the last validation on the held-out clips (never trained on). Complexity: `params`
(learnable parameters), `macs` (mmengine's get_model_complexity_info, multiply-accumulates of one interpolated
frame at --resolution; the pure-PyTorch AdaCoF / softsplat / correlation ops are not counted by it), and
`ms_per_frame` (median over --repeats eval-mode forward passes on the CPU, teacher and student alternating so
both see the same machine load).
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
from basicsr_multigrid.training.recorder import read_run  # noqa: E402
from basicsr_multigrid.training.cli import train_in_subprocess  # noqa: E402
from basicsr_multigrid.utils.benchmarking import machine_name  # noqa: E402
from basicsr_multigrid.utils.option_file import read_option_file  # noqa: E402

DEMO_OPTIONS = {
    'teacher': 'options/train/demo/train_STMFNet_demo.yml',
    'student': 'options/train/demo/train_STMFNetMini_KD_demo.yml',
    'student_no_kd': 'options/train/demo/train_STMFNetMini_demo.yml',
}
SINGLE_PROCESS_IRRELEVANT = ('find_unused_parameters', )  # DDP-only: a run that differs only here is the same run
TARGETS = {'params_ratio_max': 0.09, 'speedup_min': 1.6, 'psnr_gap_max_db': 0.3}


def load_options(path):
    return read_option_file(osp.join(REPO_ROOT, path))


def build_network(network_opt):
    network_opt = dict(network_opt)
    return ARCH_REGISTRY.get(network_opt.pop('type'))(**network_opt).eval()


def count_macs(network, frames):
    from mmengine.analysis import get_model_complexity_info
    with torch.no_grad():
        info = get_model_complexity_info(network, inputs=(frames, ), show_table=False, show_arch=False)
    return int(info['flops'])  # mmengine's "flops" counts one multiply-add as one


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


def complexity(options, resolution, repeats):
    torch.manual_seed(0)
    frames = torch.rand(1, 4, 3, resolution, resolution)
    networks = {label: build_network(options[label]['network_g']) for label in ('teacher', 'student')}
    speed = time_forward(networks, frames, repeats)
    return {label: {'params': sum(p.numel() for p in network.parameters()),
                    'macs': count_macs(network, frames),
                    'ms_per_frame': round(speed[label], 2)} for label, network in networks.items()}


def demo_run_options(opt, name, data, iters, teacher_weights=None):
    """The shipped demo options pointed at `data`, for `iters` iterations, validating at the end only."""
    opt = copy.deepcopy(opt)
    opt['name'] = name
    for phase, split in (('train', 'train'), ('val', 'val')):
        dataset = opt['datasets'][phase]
        dataset['dataroot'] = osp.join(data, split, 'GT')
        dataset['meta_info_file'] = osp.join(data, f'meta_info_{split}.txt')
    train = opt['train']
    # the LR steps stay at the same fractions of the run
    train['scheduler']['milestones'] = [max(1, m * iters // int(train['total_iter']))
                                        for m in train['scheduler']['milestones']]
    train['total_iter'] = iters
    opt['val']['val_freq'] = iters
    opt['logger'].update(save_checkpoint_freq=iters, use_tb_logger=False, print_freq=max(1, iters // 10))
    if teacher_weights:
        opt['path']['pretrain_network_t'] = teacher_weights
    return opt


def final_metrics(experiment_root, dataset_suffix=''):
    records = read_run(experiment_root).validations
    mine = [r for r in records if r['dataset'].endswith('_teacher') == bool(dataset_suffix)]
    last = mine[-1]
    return {'psnr': round(last['psnr'], 4), 'ssim': round(last['ssim'], 4), 'train_s': last['wall_s'],
            'iters': last['iter']}


def train_all(options, data, iters, work_dir, reuse):
    """Train teacher, distilled student and no-KD student one after the other; with `reuse`, a run that already
    finished with the same options in work_dir is read instead of trained again."""
    results = {}
    teacher_weights = osp.join(work_dir, 'experiments', 'kd_bench_teacher', 'models', 'net_g_latest.pth')
    for label, name in (('teacher', 'kd_bench_teacher'), ('student', 'kd_bench_student'),
                        ('student_no_kd', 'kd_bench_student_no_kd')):
        opt = demo_run_options(options[label], name, data, iters, teacher_weights if label == 'student' else None)
        root = osp.join(work_dir, 'experiments', name)
        if reuse and finished_with(root, opt, osp.join(work_dir, f'{name}.yml')):
            print(f'{label}: reusing the finished run {root}', flush=True)
        else:
            print(f'{label}: training {name} for {iters} iterations', flush=True)
            root = train_in_subprocess(opt, work_dir, osp.join(work_dir, f'{label}.log'))
        results[label] = final_metrics(root)
    return results


def finished_with(experiment_root, opt, used_options):
    """Whether the run in experiment_root used exactly `opt` and finished (has its final weights)."""
    if not (osp.isfile(used_options) and osp.isfile(osp.join(experiment_root, 'models', 'net_g_latest.pth'))):
        return False
    used = read_option_file(used_options)
    return _without(used, SINGLE_PROCESS_IRRELEVANT) == _without(opt, SINGLE_PROCESS_IRRELEVANT)


def _without(opt, keys):
    return {k: v for k, v in opt.items() if k not in keys}


def frame_average_metrics(val_opt):
    """PSNR / SSIM of the plain average of I1 and I2 on the validation set: what a network must beat."""
    from basicsr.metrics import calculate_psnr, calculate_ssim
    from basicsr.utils import tensor2img
    from basicsr_multigrid.data.vfi_test_dataset import VFITestDataset
    dataset = VFITestDataset(dict(val_opt, phase='val'))
    psnr, ssim = [], []
    for index in range(len(dataset)):
        item = dataset[index]
        average, target = tensor2img([(item['lq'][1] + item['lq'][2]) / 2]), tensor2img([item['gt']])
        psnr.append(calculate_psnr(average, target, crop_border=0))
        ssim.append(calculate_ssim(average, target, crop_border=0))
    return {'psnr': round(statistics.mean(psnr), 4), 'ssim': round(statistics.mean(ssim), 4)}


def summary(result):
    teacher, student = result['teacher'], result['student']
    ratios = {'params_ratio': student['params'] / teacher['params'],
              'speedup': teacher['ms_per_frame'] / student['ms_per_frame']}
    if 'psnr' in teacher:
        ratios['psnr_gap_db'] = teacher['psnr'] - student['psnr']
        ratios['kd_gain_db'] = student['psnr'] - result['student_no_kd']['psnr']
    met = {'params_ratio': ratios['params_ratio'] <= TARGETS['params_ratio_max'],
           'speedup': ratios['speedup'] >= TARGETS['speedup_min']}
    if 'psnr_gap_db' in ratios:
        met['psnr_gap_db'] = ratios['psnr_gap_db'] <= TARGETS['psnr_gap_max_db']
    return {k: round(v, 4) for k, v in ratios.items()}, met


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', required=True, help='JSON file to write')
    parser.add_argument('--data', default='datasets/demo', help='demo data (built by tools/make_demo_data.py)')
    parser.add_argument('--iters', type=int, default=300, help='training iterations of each run')
    parser.add_argument('--resolution', type=int, default=256, help='frame size of the speed and MAC measurement')
    parser.add_argument('--repeats', type=int, default=5, help='timed forward passes per network')
    parser.add_argument('--work-dir', default='experiments/benchmark_kd', help='where the training runs go')
    parser.add_argument('--complexity-only', action='store_true', help='skip training: params, MACs, speed')
    parser.add_argument('--reuse-runs', action='store_true',
                        help='read runs that already finished in --work-dir with the same options instead of retraining')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    options = {label: load_options(path) for label, path in DEMO_OPTIONS.items()}
    if not args.complexity_only and not osp.isfile(osp.join(args.data, 'meta_info_val.txt')):
        sys.exit(f'error: no demo data in {args.data}; build it with: python tools/make_demo_data.py --out {args.data}')
    torch.set_num_threads(os.cpu_count() or 1)
    result = complexity(options, args.resolution, args.repeats)
    if not args.complexity_only:
        work_dir = osp.abspath(args.work_dir)
        os.makedirs(work_dir, exist_ok=True)
        for label, metrics in train_all(options, osp.abspath(args.data), args.iters, work_dir,
                                        args.reuse_runs).items():
            result.setdefault(label, {}).update(metrics)
        val_opt = demo_run_options(options['teacher'], 'frame_average', osp.abspath(args.data), 1)['datasets']['val']
        result['frame_average'] = frame_average_metrics(val_opt)
    ratios, met = summary(result)
    result.update(summary=ratios, targets=TARGETS, targets_met=met, machine=machine_name(),
                  date=time.strftime('%Y-%m-%d'), settings={'resolution': args.resolution, 'repeats': args.repeats,
                                                            'iters': None if args.complexity_only else args.iters,
                                                            'threads': torch.get_num_threads()})
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=1)
        f.write('\n')
    print(json.dumps({k: result[k] for k in ('teacher', 'student', 'summary', 'targets_met')}, indent=1))


if __name__ == '__main__':
    main()
