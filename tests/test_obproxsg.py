"""OBProxSG: exact proximal and orthant steps against hand-computed values, channel (group) sparsity, resume of
its phase, and construction by name from BasicSR options."""
import pytest
import torch
from torch import nn

from basicsr.models.base_model import BaseModel
from basicsr_multigrid.optim.obproxsg import OBProxSG, channel_sparsity_param_groups
from basicsr_multigrid.utils.channel_units import channel_units, layer_units
from basicsr_multigrid.utils.errors import OptionError
from tests.conftest import NormalisedWidth


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


def test_group_lasso_behind_a_batchnorm_removes_the_unneeded_channel_and_keeps_the_needed_one():
    """The target reads channel 0 only. Behind a BatchNorm each conv row is scale-free, so a group lasso on the rows
    shrinks the needed one as fast as the other (measured with the previous units, conv rows + BatchNorm shift:
    channel norms 0.31 / 0.02 after these steps); on the BatchNorm's scale and shift the loss holds channel 0."""
    torch.manual_seed(0)
    net = NormalisedWidth(2, 2, 1, conv_bias=False)
    with torch.no_grad():
        net.conv.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        net.head.weight.copy_(torch.tensor([1.0, 0.5]).view(1, 2, 1, 1))
        net.head.bias.zero_()
    assert [t.name for t in channel_units(net)['channels']] == ['bn.weight', 'bn.bias']
    optimizer = OBProxSG(channel_sparsity_param_groups(net), lr=0.05, lambda_=0.2, prox_iters=50,
                         sparsity='channel')
    for _ in range(100):
        x = torch.randn(16, 2, 4, 4)
        optimizer.zero_grad()
        (net(x) - (2 * torch.relu(x[:, :1]) + 0.5)).pow(2).mean().backward()
        optimizer.step()
    scale, shift = net.bn.weight.detach(), net.bn.bias.detach()
    assert scale[1] == 0 and shift[1] == 0
    assert torch.stack([scale[0], shift[0]]).norm() > 0.9
    assert (net.conv.weight[1] != 0).any()  # the removed channel's conv row is left to the width read-off


def test_channel_mode_zeroes_whole_output_channels_and_reports_density():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.ConvTranspose2d(8, 6, 2, stride=2))
    with torch.no_grad():  # make half the output channels of each layer small, so the group lasso removes them
        net[0].weight[4:] *= 1e-3
        net[0].bias[4:] *= 1e-3
        net[2].weight[:, 3:] *= 1e-3
        net[2].bias[3:] *= 1e-3
    optimizer = OBProxSG(channel_sparsity_param_groups(net), lr=0.01, lambda_=0.5, prox_iters=3, sparsity='channel')
    data = torch.randn(2, 3, 8, 8)
    for _ in range(6):
        optimizer.zero_grad()
        net(data).pow(2).mean().backward()
        optimizer.step()
    conv_alive = net[0].weight.flatten(1).norm(dim=1) > 0
    deconv_alive = net[2].weight.transpose(0, 1).flatten(1).norm(dim=1) > 0
    assert conv_alive.tolist() == [True] * 4 + [False] * 4
    assert deconv_alive.tolist() == [True] * 3 + [False] * 3
    assert (net[0].bias[4:] == 0).all() and (net[0].bias[:4] != 0).all()  # a bias goes with its channel
    regularised = sum(p.numel() for p in net.parameters())
    nonzero = sum(int(torch.count_nonzero(p)) for p in net.parameters())
    assert optimizer.density() == pytest.approx(nonzero / regularised)
    assert 0.4 < optimizer.density() < 0.6


class CoupledPair(nn.Module):
    """Two convs whose outputs are summed (one width, `channels`), then a conv with a BatchNorm of its own width."""

    def __init__(self, channels=4):
        super().__init__()
        self.left, self.right = nn.Conv2d(3, channels, 3, padding=1), nn.Conv2d(3, channels, 1)
        self.head = nn.Sequential(nn.Conv2d(channels, 2, 3, padding=1), nn.BatchNorm2d(2))

    def forward(self, x):
        return self.head(self.left(x) + self.right(x))

    def width_groups(self):
        return {'channels': [('left.weight', 0), ('right.weight', 0)]}

    def channel_units(self):
        return channel_units(self)


def test_a_width_is_one_unit_over_its_layers_biases_or_batchnorm_scales_and_shifts():
    net = CoupledPair()
    assert channel_units(net)['channels'] == [('left.weight', 0, 0), ('left.bias', 0, 0), ('right.weight', 0, 0),
                                              ('right.bias', 0, 0)]
    # a BatchNorm after a layer decides its channels: its scale and shift replace the layer's weight and bias
    assert layer_units(net)['head.0'] == [('head.1.weight', 0, 0), ('head.1.bias', 0, 0)]
    # an activation between a conv and its BatchNorm keeps the channels; another conv in between does not; a
    # BatchNorm without scale and shift cannot zero a channel
    chain = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1),
                          nn.BatchNorm2d(4, affine=False))
    assert [t.name for t in layer_units(chain)['0']] == ['2.weight', '2.bias']
    assert [t.name for t in layer_units(chain)['3']] == ['3.weight', '3.bias']
    assert [t.name for t in layer_units(chain)['4']] == ['4.weight', '4.bias']
    groups = channel_sparsity_param_groups(net)
    assert [g.get('unit') for g in groups] == ['channels', None]
    assert [p is q for p, q in zip(groups[0]['params'], [net.left.weight, net.left.bias, net.right.weight,
                                                         net.right.bias])] == [True] * 4
    assert {id(p) for p in groups[1]['params']} == {id(p) for p in net.head.parameters()}  # not a width: plain


def test_coupled_layers_lose_a_channel_together_and_keep_it_while_either_holds_it():
    net = CoupledPair()
    with torch.no_grad():
        for conv in (net.left, net.right):
            conv.weight.fill_(0.1)
            conv.bias.fill_(0.1)
        net.left.weight[2:] = 0.01  # channels 2 and 3 small in the left conv ...
        net.left.bias[2:] = 0.01
        net.right.weight[3] = 0.01  # ... channel 3 small in the right one too, channel 2 not
        net.right.bias[3] = 0.01
    # 32 entries per channel: removed below norm lr * lambda * sqrt(32) = 0.113; channel 2 has 0.207, channel 3 0.057
    optimizer = OBProxSG(channel_sparsity_param_groups(net), lr=1.0, lambda_=0.02, prox_iters=1, sparsity='channel',
                         lambda_scale='none')
    for param in net.parameters():
        param.grad = torch.zeros_like(param)
    optimizer.step()
    left_alive = net.left.weight.flatten(1).norm(dim=1) > 0
    assert left_alive.tolist() == [True, True, True, False]  # channel 2 lives on through the right conv


def test_group_lambda_grows_with_sqrt_of_the_group_size_so_one_value_fits_every_layer():
    """lambda_scale none: entries of size a everywhere, a channel of p entries has norm a * sqrt(p), so with
    lambda * sqrt(p) one proximal step (zero gradient) removes it exactly when a <= lr * lambda, whatever the fan-in."""
    for fan_in in (2, 64):
        for entry, survives in ((0.0099, False), (0.0101, True)):
            conv = nn.Conv2d(fan_in, 3, 3, bias=False)
            with torch.no_grad():
                conv.weight.fill_(entry)
            conv.weight.grad = torch.zeros_like(conv.weight)
            OBProxSG(channel_sparsity_param_groups(conv), lr=0.1, lambda_=0.1, prox_iters=1, sparsity='channel',
                     lambda_scale='none').step()
            assert bool(conv.weight.abs().sum() > 0) == survives, (fan_in, entry)
            if survives:  # shrunk by lr * lambda per entry
                assert conv.weight.detach() == pytest.approx(torch.full_like(conv.weight, entry - 0.01), abs=1e-7)


RELATIVE_SIZES = (0.3, 0.8, 1.2, 1.4)  # per output channel, times the layer's scale


def scaled_conv(fan_in, scale):
    conv = nn.Conv2d(fan_in, len(RELATIVE_SIZES), 3, bias=False)
    with torch.no_grad():
        for channel, size in enumerate(RELATIVE_SIZES):
            conv.weight[channel] = scale * size
    conv.weight.grad = torch.zeros_like(conv.weight)
    return conv


@pytest.mark.parametrize('fan_in, scale', [(2, 1.0), (2, 0.01), (64, 0.05), (64, 3.0)])
def test_unit_rms_lambda_prunes_the_same_channels_at_any_fan_in_and_weight_scale(fan_in, scale):
    """lambda_scale unit_rms (default): lambda_c = lambda * sqrt(p) * r_u. One proximal step with lr * lambda = 0.5
    removes the channels below 0.5 * r_u and shrinks the others by 0.5 * r_u per entry, at any scale."""
    conv = scaled_conv(fan_in, scale)
    unit_rms = scale * (sum(s * s for s in RELATIVE_SIZES) / len(RELATIVE_SIZES)) ** 0.5
    optimizer = OBProxSG(channel_sparsity_param_groups(conv), lr=0.5, lambda_=1.0, prox_iters=1, sparsity='channel')
    optimizer.step()
    assert optimizer.param_groups[0]["unit_rms"] == pytest.approx(unit_rms, rel=1e-6)
    weights = conv.weight.detach()
    assert weights[0].abs().sum() == 0  # 0.3 < 0.5 * 1.016
    for channel in (1, 2, 3):
        expected = scale * RELATIVE_SIZES[channel] - 0.5 * unit_rms
        assert weights[channel] == pytest.approx(torch.full_like(weights[channel], expected), rel=1e-5)


def test_unit_rms_is_taken_once_and_kept_through_a_state_dict_round_trip():
    conv = scaled_conv(4, 1.0)
    optimizer = OBProxSG(channel_sparsity_param_groups(conv), lr=0.1, lambda_=1.0, prox_iters=5, sparsity='channel')
    optimizer.step()
    first = optimizer.param_groups[0]['unit_rms']
    optimizer.step()  # the weights shrank, r_u did not change
    assert optimizer.param_groups[0]['unit_rms'] == first
    resumed = OBProxSG(channel_sparsity_param_groups(conv), lr=0.1, lambda_=1.0, prox_iters=5, sparsity='channel')
    resumed.load_state_dict(optimizer.state_dict())
    assert resumed.param_groups[0]['unit_rms'] == first
    before = conv.weight.detach().clone()
    resumed.step()  # shrinks by lr * lambda * (the first r_u) per entry, not by the current, smaller RMS
    assert (before[1] - conv.weight.detach()[1]).mean().item() == pytest.approx(0.1 * first, rel=1e-5)


@pytest.mark.parametrize('sparsity', ['element', 'channel'])
def test_proximal_steps_until_prox_iters_then_orthant_steps_that_never_revive_a_zero(sparsity):
    """A zero weight with a large gradient: a proximal step moves it off zero; an orthant step keeps it at zero."""
    conv = nn.Conv2d(1, 2, 1, bias=False)
    groups = channel_sparsity_param_groups(conv) if sparsity == 'channel' else [conv.weight]
    optimizer = OBProxSG(groups, lr=0.1, lambda_=0.01, prox_iters=1, sparsity=sparsity, lambda_scale='none')
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([0.0, 1.0]).view(2, 1, 1, 1))
    conv.weight.grad = torch.tensor([-5.0, 0.0]).view(2, 1, 1, 1)
    optimizer.step()  # step 0 < prox_iters: proximal
    assert conv.weight[0].item() == pytest.approx(0.5 - 0.1 * 0.01)  # lr*|g| = 0.5, shrunk by lr*lambda
    with torch.no_grad():
        conv.weight[0] = 0.0
    optimizer.step()  # orthant
    assert conv.weight[0].item() == 0.0 and conv.weight[1].item() == pytest.approx(1.0 - 2 * 0.1 * 0.01)


def test_basicsr_models_build_it_by_name():
    param = param_with_grad([1.0], [0.0])
    optimizer = BaseModel.get_optimizer(None, 'OBProxSG', [param], 1e-3, lambda_=1e-4, prox_iters=10)
    assert isinstance(optimizer, OBProxSG) and optimizer.prox_iters == 10


@pytest.mark.parametrize('kwargs, message', [
    ({'sparsity': 'filter'}, "sparsity 'filter'"),
    ({'lambda_': -1}, 'lambda_=-1'),
    ({'weight_decay': 1e-4}, 'weight_decay'),
    ({'lambda_scale': 'fan_in'}, "lambda_scale 'fan_in'"),
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
    assert isinstance(optimizer, OBProxSG) and [0] in [group['channel_dims'][:1] for group in optimizer.param_groups]
    with pytest.raises(ValueError, match='sparsity channel needs channel-unit parameter groups'):
        OBProxSG(nn.Conv2d(2, 2, 1).parameters(), lr=1e-3, sparsity='channel')
