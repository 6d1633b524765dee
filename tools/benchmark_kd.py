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
output distillation (`train.feature_distill_opt`; `VSR_VARIANTS` in basicsr_multigrid/benchmarks/vsr_distillation.py),
each with its `kd_gain_db_multigrid_<variant>`.

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
import json
import os
import sys
import time
from os import path as osp

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from basicsr_multigrid.benchmarks import vfi_distillation, vsr_distillation  # noqa: E402
from basicsr_multigrid.utils.benchmarking import machine_name  # noqa: E402
from basicsr_multigrid.utils.errors import OptionError  # noqa: E402

PRESETS = {'cpu': vfi_distillation.PRESET, 'vsr-cpu': vsr_distillation.PRESET}  # iterations, seeds, validations


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
    parser.add_argument('--kd-variants', nargs='+', choices=sorted(vsr_distillation.VSR_VARIANTS), default=[],
                        help='vsr-cpu: also the multigrid student distilled with these variants (see VSR_VARIANTS)')
    parser.add_argument('--data', default='datasets/demo', help='demo data (built by tools/make_demo_data.py)')
    parser.add_argument('--resolution', type=int, default=256, help='frame size of the published pair measurement')
    parser.add_argument('--demo-resolution', type=int, default=256, help='frame size of the CPU family measurement')
    parser.add_argument('--repeats', type=int, default=5, help='timed forward passes per network')
    parser.add_argument('--work-dir', default='experiments/benchmark_kd', help='where the training runs go')
    parser.add_argument('--complexity-only', action='store_true', help='only the published pair: params, MACs, speed')
    return parser.parse_args(argv)


def preset_of(args):
    vsr = args.preset == 'vsr-cpu'
    preset = dict(PRESETS[args.preset])
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
        vsr = args.preset == 'vsr-cpu'
        if vsr and args.complexity_only:
            raise OptionError(f'--complexity-only: measures the published ST-MFNet pair, not the {args.preset} preset')
        result = run_workflow(args, preset, vsr)
    except OptionError as error:
        sys.exit(f'error: {error}')
    settings = {'threads': torch.get_num_threads()}
    if not args.complexity_only:
        settings.update(preset, preset=args.preset)
    if not vsr:  # the frame-interpolation workflow's targets include the published pair's
        settings.update(resolution=args.resolution, repeats=args.repeats)
    result.update(machine=machine_name(), date=time.strftime('%Y-%m-%d'), settings=settings)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=1)
        f.write('\n')
    if args.plot and not args.complexity_only:
        (vsr_distillation.vsr_plot if vsr else vfi_distillation.plot)(result, args.plot)
    if vsr:
        print(vsr_distillation.vsr_summary_table(result))
        return
    print(json.dumps({k: result[k] for k in ('published', 'targets_met')}, indent=1))
    if not args.complexity_only:
        print(vfi_distillation.summary_table(result))


def run_workflow(args, preset, vsr):
    if vsr:
        return vsr_distillation.run_workflow(args.data, args.work_dir, preset, args.teacher_weights, args.kd_variants)
    return vfi_distillation.results(args.data, args.work_dir, preset, args.demo_resolution, args.resolution,
                                    args.repeats, workflow=not args.complexity_only)


if __name__ == '__main__':
    main()
