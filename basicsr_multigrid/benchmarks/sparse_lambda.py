"""The lambda at which a sparse run's loss gradient balances OBProxSG's group-lasso pull, per channel of each width
(tools/sparse_lambda_scale.py is its command line; its help says how to read it)."""
import statistics

import torch
from basicsr.archs import build_network
from basicsr.data import build_dataset
from basicsr.losses import build_loss

from basicsr_multigrid.benchmarks.runs import REPO_ROOT, portable_path
from basicsr_multigrid.optim.obproxsg import ChannelUnit, channel_sparsity_param_groups
from basicsr_multigrid.utils.errors import OptionError
from basicsr_multigrid.utils.weights import load_weights


def measure(opt, option_file, weights, batches, seed):
    """{unit key: min / median / max of lambda*} of the sparse run `opt` (read from `option_file`) from `weights`
    (default: its path.pretrain_network_g), over `batches` training batches drawn with `seed`, with the settings
    that made it."""
    optim = sparse_optimizer_options(opt, option_file)
    weights = weights or opt.get('path', {}).get('pretrain_network_g')
    if not weights:
        raise OptionError(f'--weights: not given and {option_file} has no path.pretrain_network_g')
    network = build_network(dict(opt['network_g']))
    load_weights(network, weights, 'params', what='network_g')
    loss = build_loss(dict(opt['train']['pixel_opt']))
    lambda_scale = optim.get('lambda_scale', 'unit_rms')
    scales = balancing_lambdas(network, loss, training_batches(opt, batches, seed), lambda_scale)
    return {'option_file': portable_path(option_file, REPO_ROOT), 'weights': portable_path(weights, REPO_ROOT),
            'batches': batches, 'seed': seed, 'lambda': optim.get('lambda_', 1e-4), 'lambda_scale': lambda_scale,
            'balancing_lambda': {key: summary(values) for key, values in scales.items()}}


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


def summary(values):
    values = values.tolist()
    return {key: float(f'{value:.3g}') for key, value in
            (('min', min(values)), ('median', statistics.median(values)), ('max', max(values)))}
