"""tools/sparse_lambda_scale.py: the lambda at which the loss gradient balances OBProxSG's group-lasso pull,
recomputed by hand on a tiny network; the command on the demo data; one-line errors."""
import json
from os import path as osp

import pytest
import torch
from torch import nn

from basicsr_multigrid.archs.stmfnet_arch import STMFNet
from basicsr_multigrid.benchmarks.sparse_lambda import balancing_lambdas
from tests.conftest import REPO_ROOT, TINY_WIDTHS, NormalisedWidth, run_tool, vfi_options, write_options


@pytest.mark.parametrize('lambda_scale', ['unit_rms', 'none'])
def test_balancing_lambda_is_the_mean_gradient_norm_over_the_pull_weight(lambda_scale):
    torch.manual_seed(0)
    network = NormalisedWidth(3, 4, 3, kernel_size=3)  # four channels behind a BatchNorm
    with torch.no_grad():
        network.bn.weight.uniform_(0.5, 2.0)
        network.bn.bias.uniform_(-0.5, 0.5)
    batches = [(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)) for _ in range(3)]
    loss = nn.L1Loss()
    scales = balancing_lambdas(network, loss, batches, lambda_scale)
    assert list(scales) == ['channels']  # the head is no width
    # by hand: the unit is the BatchNorm's scale and shift, 2 entries per channel
    scale, shift = network.bn.weight, network.bn.bias
    norms = torch.zeros(4, dtype=torch.float64)
    for inputs, target in batches:
        network.zero_grad()
        loss(network(inputs), target).backward()
        norms += (scale.grad.double() ** 2 + shift.grad.double() ** 2).sqrt()
    rms = float(((scale.detach().double() ** 2).sum() + (shift.detach().double() ** 2).sum()) / 8) ** 0.5
    weight = 2 ** 0.5 * (rms if lambda_scale == 'unit_rms' else 1.0)
    torch.testing.assert_close(scales['channels'], norms / 3 / weight, rtol=1e-6, atol=0)
    assert len(set(scales['channels'].tolist())) == 4  # channels differ: a wrong index mapping would show


def test_command_reports_every_width_of_the_demo_sparse_run(demo_data, tmp_path):
    torch.manual_seed(0)
    weights = str(tmp_path / 'teacher.pth')
    sparse = vfi_options(demo_data, 'train_STMFNet_sparse_demo.yml', 'sparse', path__pretrain_network_g=weights)
    arguments = {key: value for key, value in sparse['network_g'].items() if key != 'type'}
    torch.save({'params': STMFNet(**arguments).state_dict()}, weights)
    option_file = write_options(sparse, tmp_path, 'sparse.yml')
    out = str(tmp_path / 'scale.json')
    result = run_tool('sparse_lambda_scale', '-opt', option_file, '--batches', '1', '--out', out)
    assert result.returncode == 0, result.stderr
    assert 'kernel_channels' in result.stdout
    with open(out) as f:
        result = json.load(f)
    assert result['weights'] == weights and result['lambda'] == sparse['train']['optim_g']['lambda_']
    assert list(result['balancing_lambda']) == list(STMFNet(**arguments).channel_units())
    for values in result['balancing_lambda'].values():
        assert 0 < values['min'] <= values['median'] <= values['max']
    # a checkpoint of the PWC-Net variant has tensors this DIS network lacks: one line naming them
    torch.save({'params': STMFNet(**TINY_WIDTHS).state_dict()}, weights)
    result = run_tool('sparse_lambda_scale', '-opt', option_file, '--out', out, '--overwrite')
    assert result.returncode == 2 and result.stderr.strip() == (
        f'error: --weights: {weights} does not match network_g: unexpected keys '
        'flow_estimator.netExtractor.netOne.0.weight, flow_estimator.netExtractor.netOne.0.bias, '
        'flow_estimator.netExtractor.netOne.2.weight (+123 more)')


@pytest.mark.slow
def test_bad_input_is_one_line_and_keeps_an_existing_output(tmp_path):
    out = tmp_path / 'scale.json'
    out.write_text('keep me\n')
    dense = osp.join(REPO_ROOT, 'options', 'train', 'demo', 'train_STMFNet_demo.yml')
    result = run_tool('sparse_lambda_scale', '-opt', dense, '--out', out)
    assert result.returncode == 2 and 'exists (use --overwrite' in result.stderr
    result = run_tool('sparse_lambda_scale', '-opt', dense, '--out', out, '--overwrite')
    assert result.returncode == 2 and result.stderr.strip() == (
        f'error: {dense}: train.optim_g is not a channel-sparse OBProxSG run (type: OBProxSG, sparsity: channel)')
    sparse = osp.join(REPO_ROOT, 'options', 'train', 'demo', 'train_STMFNet_sparse_demo.yml')
    result = run_tool('sparse_lambda_scale', '-opt', sparse, '--weights', tmp_path / 'none.pth', '--out', out,
                      '--overwrite')
    assert result.returncode == 2 and result.stderr.strip() == f'error: --weights: file not found: {tmp_path}/none.pth'
    assert out.read_text() == 'keep me\n'
