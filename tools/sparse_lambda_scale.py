"""The lambda at which a sparse run's loss gradient balances its group-lasso pull, per channel of each width.

    python tools/sparse_lambda_scale.py -opt options/train/demo/train_STMFNet_sparse_demo.yml \
        --weights experiments/STMFNet_demo/models/net_g_latest.pth --out lambda_scale.json

OBProxSG's channel mode (basicsr_multigrid/optim/obproxsg.py) pulls channel c of a unit towards zero with
lambda x w_c per unit of LR, w_c = sqrt(p_c) x r_u (`lambda_scale: unit_rms`; sqrt(p_c) with `none`); the training
loss pushes back with its gradient, of norm ||g_c|| over the channel's entries. So lambda*_c = ||g_c|| / w_c is
where channel c starts to hold against the penalty: at a lambda far above every channel's lambda* of a unit, the
penalty shrinks all of them alike, whatever their importance (nothing to select by); far below, the channels the
loss needs stay. Channel selection needs a lambda between the unit's channels' values and a run whose LRs sum to
about 1 / lambda or more, so that the penalty can empty the channels below it.

||g_c|| is the mean over --batches training batches of the option file's train set (batch_size_per_gpu items,
drawn with --seed), the network in train mode as the sparse run sees it, the loss its `train.pixel_opt`, from
--weights (the dense network the sparse run starts from; default: its path.pretrain_network_g). Writes, per width
unit, the min / median / max over its channels and the option file's lambda next to them.
"""
import argparse
import json
import sys
from os import path as osp

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import basicsr_multigrid  # noqa: E402,F401  (compat fixes + registration)
from basicsr_multigrid.benchmarks.sparse_lambda import measure  # noqa: E402
from basicsr_multigrid.utils.atomic_io import write_text_atomic  # noqa: E402
from basicsr_multigrid.utils.errors import OptionError  # noqa: E402
from basicsr_multigrid.utils.option_file import read_option_file  # noqa: E402

USAGE_ERROR = 2


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', required=True, help='option file of the sparse (OBProxSG, sparsity: channel) run')
    parser.add_argument('--weights', help='dense checkpoint to measure (default: path.pretrain_network_g)')
    parser.add_argument('--batches', type=int, default=8, help='training batches to average over')
    parser.add_argument('--seed', type=int, default=0, help='seed of the batch draw')
    parser.add_argument('--out', required=True, help='JSON to write')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing --out file')
    return parser.parse_args(argv)


def run(args):
    if osp.exists(args.out) and not args.overwrite:
        raise OptionError(f'--out: {args.out} exists (use --overwrite to replace it)')
    if args.batches < 1:
        raise OptionError(f'--batches: {args.batches} (need at least 1)')
    result = measure(read_option_file(args.opt), args.opt, args.weights, args.batches, args.seed)
    write_text_atomic(args.out, [json.dumps(result, indent=1) + '\n'])
    print(table(result))
    return 0


def table(result):
    lines = [f"lambda* per channel (the option file's lambda: {result['lambda']:g})",
             f"{'unit':<24}{'min':>10}{'median':>10}{'max':>10}"]
    for key, values in result['balancing_lambda'].items():
        lines.append(f"{key:<24}{values['min']:>10.3g}{values['median']:>10.3g}{values['max']:>10.3g}")
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    try:
        return run(args)
    except OptionError as error:
        print(f'error: {error}', file=sys.stderr)
        return USAGE_ERROR


if __name__ == '__main__':
    sys.exit(main())
