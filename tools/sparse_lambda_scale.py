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
import statistics
import sys
from os import path as osp

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import basicsr_multigrid  # noqa: E402,F401  (compat fixes + registration)
from basicsr.archs import build_network  # noqa: E402
from basicsr.data import build_dataset  # noqa: E402
from basicsr.losses import build_loss  # noqa: E402
from basicsr_multigrid.optim.obproxsg import ChannelUnit, channel_sparsity_param_groups  # noqa: E402
from basicsr_multigrid.utils.atomic_io import write_text_atomic  # noqa: E402
from basicsr_multigrid.utils.errors import OptionError  # noqa: E402
from basicsr_multigrid.utils.option_file import read_option_file  # noqa: E402
from basicsr_multigrid.utils.weights import load_weights  # noqa: E402

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


def balancing_lambdas(network, loss, batches, lambda_scale='unit_rms'):
    """{unit key: float64 vector of lambda*_c = mean over batches of ||g_c||, divided by the pull weight w_c}."""
    groups = [group for group in channel_sparsity_param_groups(network) if 'channel_dims' in group]
    units = {}
    with torch.no_grad():
        for group in groups:
            group.update(lambda_=1.0, unit_rms=None)  # lambdas of a unit at lambda 1 are its pull weights w_c
            units[group['unit']] = ChannelUnit(group, relative=lambda_scale == 'unit_rms')
    totals = dict.fromkeys(units, 0.0)
    network.train()
    for inputs, target in batches:
        network.zero_grad()
        loss(network(inputs), target).backward()
        with torch.no_grad():
            for key, unit in units.items():
                totals[key] = totals[key] + unit.gradient_norms()
    return {key: totals[key] / len(batches) / units[key].lambdas for key in units}


def training_batches(opt, count, seed):
    """`count` batches of `batch_size_per_gpu` items of the option file's train set, drawn with `seed`."""
    dataset_opt = dict(opt['datasets']['train'], phase='train', scale=opt.get('scale', 1))
    dataset = build_dataset(dataset_opt)
    generator = torch.Generator().manual_seed(seed)
    batch_size = dataset_opt['batch_size_per_gpu']
    batches = []
    for _ in range(count):
        items = [dataset[int(i)] for i in torch.randint(len(dataset), (batch_size,), generator=generator)]
        batches.append((torch.stack([item['lq'] for item in items]), torch.stack([item['gt'] for item in items])))
    return batches


def sparse_optimizer_options(opt, source):
    optim = opt.get('train', {}).get('optim_g', {})
    if optim.get('type') != 'OBProxSG' or optim.get('sparsity') != 'channel':
        raise OptionError(f'{source}: train.optim_g is not a channel-sparse OBProxSG run (type: OBProxSG, '
                          'sparsity: channel)')
    return optim


def run(args):
    if osp.exists(args.out) and not args.overwrite:
        raise OptionError(f'--out: {args.out} exists (use --overwrite to replace it)')
    if args.batches < 1:
        raise OptionError(f'--batches: {args.batches} (need at least 1)')
    opt = read_option_file(args.opt)
    optim = sparse_optimizer_options(opt, args.opt)
    weights = args.weights or opt.get('path', {}).get('pretrain_network_g')
    if not weights:
        raise OptionError(f'--weights: not given and {args.opt} has no path.pretrain_network_g')
    network = build_network(dict(opt['network_g']))
    load_weights(network, weights, 'params', what='network_g')
    loss = build_loss(dict(opt['train']['pixel_opt']))
    lambda_scale = optim.get('lambda_scale', 'unit_rms')
    scales = balancing_lambdas(network, loss, training_batches(opt, args.batches, args.seed), lambda_scale)
    result = {'option_file': args.opt, 'weights': weights, 'batches': args.batches, 'seed': args.seed,
              'lambda': optim.get('lambda_', 1e-4), 'lambda_scale': lambda_scale,
              'balancing_lambda': {key: summary(values) for key, values in scales.items()}}
    write_text_atomic(args.out, [json.dumps(result, indent=1) + '\n'])
    print(table(result))
    return 0


def summary(values):
    values = values.tolist()
    return {key: float(f'{value:.3g}') for key, value in
            (('min', min(values)), ('median', statistics.median(values)), ('max', max(values)))}


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
