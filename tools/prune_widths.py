"""Read the surviving channel widths off a group-sparsity-trained network and write the student's option file.

    python tools/prune_widths.py -opt options/train/STMFNet/train_STMFNet_sparse_Vimeo90K.yml \
        --weights experiments/STMFNet_sparse_Vimeo90K/models/net_g_latest.pth \
        --template options/train/STMFNet/train_STMFNetMini_KD_Vimeo90K.yml \
        --out options/train/STMFNet/train_STMFNetPruned_KD_Vimeo90K.yml

The sparse run (`optim_g.type: OBProxSG` with `sparsity: channel`) drives whole output channels to exactly
zero. For every width argument of the arch (`channel_units()` of STMFNet: feature_channels[i], kernel_channels,
grid_channels[i], tem_channels[i], tem_fuse_channels), the surviving width is the number of channels whose
weights and biases (or, where a BatchNorm follows the layer, its scale and shift) in any layer of that width keep
a joint norm above --threshold, rounded up to what the arch accepts (basicsr_multigrid/pruning.py). The student
option file is the --template (a distillation run) with:

- network_g: the template's student arch with the new widths and the template's flow branch (ST-MFNet Mini's
  has none; the CPU demo student splats along DIS flows); --keep-flow adds the branch where the template has none;
- network_t / path.pretrain_network_t: the sparse run's network_g and the dense checkpoint it started from
  (path.pretrain_network_g), unless --teacher is given.
"""
import argparse
import os
import sys
from os import path as osp

import yaml

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import basicsr_multigrid  # noqa: E402,F401  (compat fixes + registration)
from basicsr_multigrid import pruning  # noqa: E402
from basicsr_multigrid.utils.weights import read_weights  # noqa: E402
from basicsr_multigrid.utils.errors import OptionError  # noqa: E402
from basicsr_multigrid.utils.atomic_io import atomic_torch_save, write_text_atomic  # noqa: E402
from basicsr_multigrid.utils.option_file import read_option_file  # noqa: E402

USAGE_ERROR = 2


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', required=True, help='option file of the sparse (OBProxSG) training run')
    parser.add_argument('--weights', required=True, help='its trained checkpoint (net_g_*.pth)')
    parser.add_argument('--template', required=True, help='distillation option file to derive the student run from')
    parser.add_argument('--out', required=True, help='student option file to write')
    parser.add_argument('--name', help='experiment name of the student run (default: the --out file name)')
    parser.add_argument('--teacher', help='teacher checkpoint (default: path.pretrain_network_g of the sparse run)')
    parser.add_argument('--threshold', type=float, default=0.0, help='L2 norm at or below which a channel is pruned')
    parser.add_argument('--keep-flow', action='store_true',
                        help="add the flow + softsplat branch where the template has none (its flow_estimator)")
    parser.add_argument('--init-weights', help="also write the student's initial weights cut from the surviving "
                        'channels of --weights to this file, and start the student from it (path.pretrain_network_g)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing --out file')
    return parser.parse_args(argv)


def run(args):
    if osp.exists(args.out) and not args.overwrite:
        raise OptionError(f'--out: {args.out} exists (use --overwrite to replace it)')
    sparse_opt = read_option_file(args.opt)
    template = read_option_file(args.template)
    teacher_path = args.teacher or sparse_opt.get('path', {}).get('pretrain_network_g')
    if not teacher_path:
        raise OptionError(f'--teacher: {args.opt} has no path.pretrain_network_g; name the dense teacher checkpoint')
    state = read_weights(args.weights, 'params', '--weights')[0]
    read = pruning.read_off(sparse_opt, state, template['network_g'], args.threshold, args.keep_flow,
                            source=f'--weights: {args.weights} ({args.opt})')
    name = args.name or osp.splitext(osp.basename(args.out))[0]
    opt = pruning.student_options(template, sparse_opt, read.student_network, teacher_path, name)
    if args.init_weights:
        initial, kept = pruning.initial_state_of(sparse_opt, state, read)
        os.makedirs(osp.dirname(osp.abspath(args.init_weights)), exist_ok=True)
        atomic_torch_save({'params': initial}, args.init_weights)
        opt['path']['pretrain_network_g'] = osp.abspath(args.init_weights)
        print(f'{len(kept)} of {len(initial)} student tensors cut from the surviving channels of {args.weights}; '
              f'the rest keep their initialisation; wrote {args.init_weights}')
    teacher_params, student_params = (pruning.parameter_count(network_opt)
                                      for network_opt in (sparse_opt['network_g'], read.student_network))
    header = (f'# Written by tools/prune_widths.py from {args.weights} ({args.opt}).\n'
              f"# Student {read.student_network['type']}: {student_params:,} parameters, "
              f'{student_params / teacher_params:.1%} of the sparse-trained network ({teacher_params:,}).\n')
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    write_text_atomic(args.out, header + yaml.safe_dump(opt, sort_keys=False))
    return read.widths, read.student_network, teacher_params, student_params


def report(widths, student_network, teacher_params, student_params, out):
    print(f'{"width":<22} {"trained":>8} {"surviving":>10}')
    for key, (old, kept) in widths.items():
        print(f'{key:<22} {old:>8} {kept:>10}')
    print('student widths: ' + ', '.join(f'{k}={v}' for k, v in student_network.items() if 'channels' in k))
    print(f'parameters: {teacher_params:,} -> {student_params:,} ({student_params / teacher_params:.1%}); wrote {out}')


def main(argv=None):
    args = parse_args(argv)
    try:
        result = run(args)
    except OptionError as error:
        print(f'error: {error}', file=sys.stderr)
        return USAGE_ERROR
    report(*result, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
