"""OBProxSG: exact proximal and orthant steps against hand-computed values, channel (group) sparsity, resume of
its phase, and construction by name from BasicSR options."""
import pytest
import torch
from torch import nn

from basicsr.models.base_model import BaseModel
from basicsr_multigrid.optim.obproxsg import OBProxSG, channel_sparsity_param_groups
from basicsr_multigrid.utils.errors import OptionError


def param_with_grad(values, grad):
    param = nn.Parameter(torch.tensor(values, dtype=torch.float64))
    param.grad = torch.tensor(grad, dtype=torch.float64)
    return param


def test_prox_step_soft_thresholds_the_gradient_step():
    param = param_with_grad([1.0, 0.05, -0.3, 0.0], [0.0, 0.0, 1.0, 0.0])
    OBProxSG([param], lr=0.1, lambda_=1.0, prox_iters=1).step()
    # x - lr*g = [1, .05, -.4, 0]; shrink by lr*lambda = .1 towards 0
    assert param.detach().tolist() == pytest.approx([0.9, 0.0, -0.3, 0.0])


def test_orthant_step_keeps_zeros_and_zeroes_sign_changes():
    param = param_with_grad([1.0, 0.0, 0.2, -0.5], [1.0, 5.0, 3.0, -1.0])
    OBProxSG([param], lr=0.1, lambda_=1.0, epsilon=0.0, prox_iters=0).step()
    # non-zero: x - lr*(g + lambda*sign(x)) = [0.8, -, -0.2 (flips: 0), -0.5 - .1*(-1 - 1) = -0.3]
    assert param.detach().tolist() == pytest.approx([0.8, 0.0, 0.0, -0.3])


def test_phases_follow_the_step_count_and_survive_a_state_dict_round_trip():
    param = param_with_grad([0.05], [0.0])
    optimizer = OBProxSG([param], lr=0.1, lambda_=0.1, prox_iters=2)
    optimizer.step()
    state = optimizer.state_dict()
    resumed = OBProxSG([param], lr=0.1, lambda_=0.1, prox_iters=2)
    resumed.load_state_dict(state)
    assert resumed.step_count == 1
    resumed.step()
    resumed.step()
    assert resumed.step_count == 3


def test_channel_mode_zeroes_whole_output_channels_and_reports_density():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.ConvTranspose2d(8, 6, 2, stride=2))
    with torch.no_grad():  # make half the output channels of each layer small, so the group lasso removes them
        net[0].weight[4:] *= 1e-3
        net[2].weight[:, 3:] *= 1e-3
    optimizer = OBProxSG(channel_sparsity_param_groups(net), lr=0.01, lambda_=5.0, prox_iters=3, sparsity='channel')
    data = torch.randn(2, 3, 8, 8)
    for _ in range(6):
        optimizer.zero_grad()
        net(data).pow(2).mean().backward()
        optimizer.step()
    conv_alive = net[0].weight.flatten(1).norm(dim=1) > 0
    deconv_alive = net[2].weight.transpose(0, 1).flatten(1).norm(dim=1) > 0
    assert conv_alive.tolist() == [True] * 4 + [False] * 4
    assert deconv_alive.tolist() == [True] * 3 + [False] * 3
    assert net[0].bias.abs().sum() > 0  # biases are not regularised in channel mode
    regularised = net[0].weight.numel() + net[2].weight.numel()
    nonzero = int(torch.count_nonzero(net[0].weight)) + int(torch.count_nonzero(net[2].weight))
    assert optimizer.density() == pytest.approx(nonzero / regularised)
    assert 0.4 < optimizer.density() < 0.6


def test_channel_param_groups_tag_the_output_dimension():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ConvTranspose3d(4, 2, 1), nn.Linear(5, 7))
    groups = {g['channel_dim']: g['params'] for g in channel_sparsity_param_groups(net)}
    assert [p is net[0].weight for p in groups[0]] == [True, False]  # conv and linear weights
    assert groups[0][1] is net[3].weight
    assert groups[1] == [net[2].weight]
    assert len(groups[None]) == 5  # conv, deconv and linear biases, batch-norm weight and bias


def test_basicsr_models_build_it_by_name():
    param = param_with_grad([1.0], [0.0])
    optimizer = BaseModel.get_optimizer(None, 'OBProxSG', [param], 1e-3, lambda_=1e-4, prox_iters=10)
    assert isinstance(optimizer, OBProxSG) and optimizer.prox_iters == 10


@pytest.mark.parametrize('kwargs, message', [
    ({'sparsity': 'filter'}, "sparsity 'filter'"),
    ({'lambda_': -1}, 'lambda_=-1'),
    ({'weight_decay': 1e-4}, 'weight_decay'),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OBProxSG([param_with_grad([1.0], [0.0])], lr=1e-3, **kwargs)


@pytest.mark.parametrize('kwargs, message', [
    ({'lambda_': -1}, r'train.optim_g \(OBProxSG\): OBProxSG: need lr > 0, lambda_ >= 0'),
    ({'lamda': 1e-4}, r"train.optim_g \(OBProxSG\): .*unexpected keyword argument 'lamda'"),
])
def test_bad_optimizer_options_are_one_line_naming_the_section(kwargs, message):
    with pytest.raises(OptionError, match=message) as raised:
        BaseModel.get_optimizer(None, 'OBProxSG', [param_with_grad([1.0], [0.0])], 1e-3, **kwargs)
    assert '\n' not in str(raised.value)


def test_video_model_gives_obproxsg_channel_groups_and_obproxsg_refuses_none():
    from basicsr.models import build_model
    opt = {'name': 'sparse_vsr', 'model_type': 'MultigridVideoRecurrentModel', 'scale': 4, 'num_gpu': 0,
           'is_train': True, 'dist': False, 'rank': 0, 'world_size': 1,
           'network_g': {'type': 'BasicVSR', 'num_feat': 4, 'num_block': 1, 'spynet_path': None},
           'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
           'train': {'optim_g': {'type': 'OBProxSG', 'lr': 1e-3, 'lambda_': 1e-4, 'sparsity': 'channel'},
                     'scheduler': {'type': 'MultiStepRestartLR', 'milestones': [10], 'gamma': 0.5},
                     'total_iter': 10, 'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}},
           'val': {'val_freq': 10, 'metrics': None}}
    optimizer = build_model(opt).optimizer_g
    assert isinstance(optimizer, OBProxSG) and 0 in {group['channel_dim'] for group in optimizer.param_groups}
    with pytest.raises(ValueError, match='sparsity channel needs parameter groups with a channel_dim'):
        OBProxSG(nn.Conv2d(2, 2, 1).parameters(), lr=1e-3, sparsity='channel')
