"""STMFNet (teacher) and STMFNetMini (student) archs: exact parameter counts of the reference models, the
BasicSR registry, the forward contract (shapes, odd and tiny frame sizes, both call forms, errors), gradients,
checkpoint-key compatibility with the reference code, and the width groups a pruning tool reads.

Forward/backward tests use tiny widths and small pads so the whole file stays fast on 2 CPU cores; the
full-size models are only constructed.
"""
import inspect

import pytest
import torch
import yaml
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn as nn
from torch.nn import functional as F

from basicsr_multigrid.archs.ops.fused import cpu_compiler_available
from basicsr_multigrid.archs.ops.op_macs import counting_op_macs
from basicsr_multigrid.archs.stmfnet_arch import STMFNet
from basicsr_multigrid.pruning import widened_arguments
from basicsr_multigrid.utils.channel_units import width_argument, width_entry_parts
from basicsr_multigrid.archs.stmfnet_blocks import reflect_pad_to
from basicsr_multigrid.archs.stmfnet_mini_arch import STMFNetMini
from tests.conftest import TINY_DISTINCT_WIDTHS, textured_sequence

TEACHER_MODULES = {'feature_extractor': 3_965_816, 'get_kernel': 1_656_858, 'scale_synthesis': 1_563_844,
                   'flow_estimator': 9_374_274, 'dyntex_generator': 4_467_907, 'metric': 1}
STUDENT_MODULES = {'feature_extractor': 393_192, 'get_kernel': 492_150, 'scale_synthesis': 378_294,
                   'dyntex_generator': 558_427}
WIDTH_KEYS = ([f'feature_channels[{i}]' for i in range(4)] + ['kernel_channels']
              + [f'grid_channels[{i}]' for i in range(3)] + [f'tem_channels[{i}]' for i in range(4)]
              + ['tem_fuse_channels'])


pytestmark = pytest.mark.usefixtures('one_torch_thread')


def tiny_student(**overrides):
    torch.manual_seed(0)
    return STMFNetMini(**{**TINY_DISTINCT_WIDTHS, 'pad_multiple': 16, **overrides})


def tiny_teacher(**overrides):
    torch.manual_seed(0)
    return STMFNet(**{**TINY_DISTINCT_WIDTHS, 'pad_multiple': 64, **overrides})


def frames(height=37, width=45, batch=1, seed=0):
    return torch.rand(batch, 4, 3, height, width, generator=torch.Generator().manual_seed(seed))


def count(module):
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------------------------- counts


@pytest.mark.parametrize('cls, total, modules', [(STMFNet, 21_028_700, TEACHER_MODULES),
                                                 (STMFNetMini, 1_822_063, STUDENT_MODULES)])
def test_default_parameter_counts_match_the_reference(cls, total, modules):
    net = cls()
    assert count(net) == total
    counted = {name: count(child) for name, child in net.named_children() if count(child)}
    assert counted == modules
    # the fixed Gaussian (3x5x5) and 8-tap (3x8) filters are buffers, as in the reference checkpoints' keys
    assert net.gauss_kernel.shape == (3, 1, 5, 5) and net.upsampler.filter.shape == (3, 1, 1, 8)
    assert 'gauss_kernel' in net.state_dict() and 'upsampler.filter' in net.state_dict()


def test_state_dict_keys_follow_the_reference_code():
    """Spot checks of reference key names and shapes (the full key sets were compared against the reference
    code, danier97/ST-MFNet @ 227a80d and crispianm/ST-MFNet-Mini @ b1d8ce5, outside this test suite)."""
    teacher = STMFNet().state_dict()
    expected = {
        'metric.paramScale': (1, 1, 1, 1),
        'feature_extractor.conv1.resnext_small.conv2.weight': (64, 2, 3, 3),
        'feature_extractor.deconv1.resnext_large.conv2.weight': (64, 2, 8, 8),
        'feature_extractor.deconv3.resnext_small.downsample.0.weight': (512, 128, 2, 2),
        'feature_extractor.conv4.attention.fc.2.weight': (512, 32),
        'get_kernel.moduleWeight1_ds.4.weight': (25, 64, 3, 3),
        'get_kernel.moduleBeta2_us.7.weight': (25, 25, 3, 3),
        'scale_synthesis.lateral_1_0.conv.weight': (64, 12, 3, 3),
        'scale_synthesis.up_1_1.f.4.weight': (64, 64, 3, 3),
        'scale_synthesis.lateral_final_1.f.3.weight': (3, 3, 3, 3),
        'flow_estimator.netExtractor.netSix.4.weight': (196, 196, 3, 3),
        'flow_estimator.netTwo.netUpfeat.weight': (597, 2, 4, 4),
        'flow_estimator.netRefiner.netMain.12.weight': (2, 32, 3, 3),
        'dyntex_generator.encoder.stem.0.weight': (32, 3, 3, 7, 7),
        'dyntex_generator.encoder.layer4.0.downsample.0.weight': (128, 96, 1, 1, 1),
        'dyntex_generator.decoder.1.upconv.0.weight': (192, 64, 3, 4, 4),
        'dyntex_generator.decoder.3.conv.1.attn_layer.0.weight': (32, 32, 1, 1, 1),
        'dyntex_generator.feature_fuse.1.running_var': (32, ),
        'dyntex_generator.outconv.1.weight': (3, 32, 7, 7),
    }
    assert {key: tuple(teacher[key].shape) for key in expected} == expected
    student = STMFNetMini().state_dict()
    assert not any(key.startswith(('flow_estimator.', 'metric.')) for key in student)
    assert tuple(student['scale_synthesis.lateral_1_0.conv.weight'].shape) == (32, 6, 3, 3)
    assert tuple(student['dyntex_generator.feature_fuse.0.weight'].shape) == (8, 80, 1, 1)
    assert tuple(student['get_kernel.moduleAlpha1.0.weight'].shape) == (30, 32, 3, 3)


def test_registry_builds_both_archs_from_yaml_options():
    opt = yaml.safe_load("""
        type: STMFNetMini
        feature_channels: [32, 64, 64, 96]
        kernel_channels: 16
        grid_channels: [8, 16, 24]
        tem_channels: [8, 12, 16, 20]
        tem_fuse_channels: 4
        pad_multiple: 32
    """)
    net = build_network(opt)
    assert type(net) is STMFNetMini and net.pad_multiple == 32 and not net.use_flow
    assert net.dyntex_generator.feature_fuse[0].out_channels == 4
    assert count(net) == count(STMFNetMini(**{k: v for k, v in opt.items() if k != 'type'}))
    assert ARCH_REGISTRY.get('STMFNet') is STMFNet
    teacher = build_network({'type': 'STMFNet', 'use_flow': False})
    # no PWC-Net and metric; the H row's first lateral block (conv and projection) reads 6 channels, not 12
    assert count(teacher) == 21_028_700 - TEACHER_MODULES['flow_estimator'] - 1 - 2 * 64 * 6 * 3 * 3


# ----------------------------------------------------------------------------------------------- forward


@pytest.mark.parametrize('build', [tiny_student, tiny_teacher], ids=['student', 'teacher'])
@pytest.mark.parametrize('mode', ['train', 'eval'])
def test_output_is_a_frame_of_the_input_size(build, mode):
    net = getattr(build(), mode)()
    clip = frames(37, 45, batch=2)
    out = net(clip)
    assert torch.is_tensor(out) and out.shape == (2, 3, 37, 45) and torch.isfinite(out).all()


@pytest.mark.parametrize('size', [(1, 1), (2, 3), (130, 5)])
def test_any_frame_size_works_with_the_default_padding(size):
    """Pads larger than the frame reflect repeatedly (a 1-pixel axis is replicated); default pad_multiple 128."""
    net = STMFNetMini(**TINY_DISTINCT_WIDTHS).train()
    assert net(frames(*size)).shape == (1, 3, *size)


def test_four_tensor_call_equals_stacked_call_and_eval_is_deterministic():
    net = tiny_teacher().eval()
    clip = frames(seed=3)
    with torch.no_grad():
        stacked = net(clip)
        separate = net(*clip.unbind(dim=1))
        again = net(clip)
    assert torch.equal(stacked, separate) and torch.equal(stacked, again)


def test_dtype_follows_the_input():
    net = tiny_student().double().eval()
    with torch.no_grad():
        out = net(frames().double())
    assert out.dtype == torch.float64


@pytest.mark.skipif(not cpu_compiler_available(), reason='needs a C++ compiler for inductor')
def test_fused_ops_give_the_eager_frame_without_gradients_and_stay_eager_in_training(compiled_op_calls):
    compiled_calls = compiled_op_calls
    net = tiny_teacher().eval()  # with the flow branch: AdaCoF and softmax splatting
    clip = frames(40, 36)
    with torch.no_grad():
        fused = net(clip)
        assert sorted(set(compiled_calls)) == ['adacof', 'softsplat'] and len(compiled_calls) == 8
        net.fused_ops = False
        eager = net(clip)
    assert torch.allclose(fused, eager, atol=1e-5, rtol=0)
    net.fused_ops = True
    compiled_calls.clear()
    trained = net(clip)
    assert compiled_calls == [] and trained.grad_fn is not None


def test_op_macs_of_the_mini_count_its_six_adacof_calls():
    net = STMFNetMini(**{**TINY_DISTINCT_WIDTHS, 'pad_multiple': 16})
    with torch.no_grad(), counting_op_macs() as tally:
        net(frames(32, 48))
    size = 32 * 48  # a multiple of 16 already: no padding
    pixels = 2 * (size // 4 + size + 4 * size)  # I1 and I2 at H/2, H and 2H
    assert dict(tally) == {'adacof': pixels * 25 * (4 * 3 + 4)}


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu():
    net = tiny_teacher().eval()
    clip = frames()
    with torch.no_grad():
        cpu = net(clip)
        gpu = net.cuda()(clip.cuda()).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-4)


@pytest.mark.parametrize('build', [tiny_student, tiny_teacher], ids=['student', 'teacher'])
def test_backward_reaches_every_parameter_with_finite_gradients(build):
    net = build().train()
    net(frames(seed=1)).square().mean().backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None]
    # only the GridNet's 2H-row blocks of the bottom-up half, which cannot reach the output row (as in the reference)
    assert missing == net.unused_parameter_names()
    assert sorted({name.split('.')[1] for name in missing}) == ['lateral_0_2', 'lateral_0_3', 'up_0_0', 'up_0_1']
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    if net.use_flow:  # the splatting branch is trained end to end, PWC-Net included
        assert net.metric.paramScale.grad.abs().item() > 0
        assert net.flow_estimator.netExtractor.netOne[0].weight.grad.abs().sum().item() > 0


def test_dis_flow_finds_a_known_translation():
    from basicsr_multigrid.archs.dis_flow import DISFlow
    clip, _ = textured_sequence(step_x=2, step_y=-1)
    i1, i2 = clip[:, 1], clip[:, 2]  # I2 is I1 moved (+2, -1): I1(p) = I2(p + (2, -1))
    flow = DISFlow()(i1, i2)
    assert flow.shape == (1, 2, 64, 64) and not flow.requires_grad
    interior = flow[0, :, 8:-8, 8:-8].flatten(1)
    assert torch.allclose(interior.median(dim=1).values, torch.tensor([2.0, -1.0]), atol=0.1)
    assert torch.allclose(DISFlow()(i2, i1)[0, :, 8:-8, 8:-8].flatten(1).median(dim=1).values,
                          torch.tensor([-2.0, 1.0]), atol=0.1)


def test_dis_teacher_splats_both_frames_to_the_middle_and_has_no_flow_parameters():
    """With `flow_estimator: dis` the splatting branch gives the GridNet I1 and I2 moved halfway along the motion
    (compared with the true middle frame of a moving texture), and the network has no flow parameters."""
    import copy
    teacher = tiny_teacher(flow_estimator='dis', pad_multiple=16)
    assert count(teacher) == count(tiny_teacher()) - count(tiny_teacher().flow_estimator)
    assert not [key for key in teacher.state_dict() if key.startswith('flow_estimator')]
    clip, middle = textured_sequence(step_x=2, step_y=2)  # I1 -> I2 moves (2, 2): the middle is 1 px from each
    for splat in teacher._splats(clip[:, 1], clip[:, 2]):
        interior = (splat - middle)[..., 8:-8, 8:-8].abs().mean().item()
        assert interior < 0.1 * (clip[:, 1] - middle)[..., 8:-8, 8:-8].abs().mean().item()
    copy.deepcopy(teacher)  # EMA copies the network: nothing OpenCV may live on it
    teacher(frames(seed=1)).square().mean().backward()
    assert teacher.metric.paramScale.grad.abs().item() > 0


def test_pruned_widths_build_and_run():
    pruned = dict(feature_channels=[32, 64, 64, 96], kernel_channels=20, grid_channels=[12, 24, 40],
                  tem_channels=[12, 20, 28, 36], tem_fuse_channels=6, pad_multiple=32)
    net = STMFNetMini(**pruned).eval()
    assert count(net) < 1_822_063
    with torch.no_grad():
        assert net(frames(33, 40)).shape == (1, 3, 33, 40)


# ----------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize('args, message', [
    ((torch.rand(1, 3, 3, 32, 32), ), r'one \(B, 4, 3, H, W\) tensor or four \(B, 3, H, W\) tensors; got shape '
                                      r'\(1, 3, 3, 32, 32\)'),
    ((torch.rand(1, 4, 1, 32, 32), ), r'got shape \(1, 4, 1, 32, 32\)'),
    (tuple(torch.rand(1, 3, 32, 32) for _ in range(3)), r'got 3 frames'),
    (tuple(torch.rand(1, 3, 32, 32) for _ in range(5)), r'got 5 frames'),
    ((torch.rand(1, 3, 32, 32), ) * 3 + (torch.rand(1, 1, 32, 32), ),
     r'got shape \(1, 3, 32, 32\), .*\(1, 1, 32, 32\)'),
    ((torch.rand(1, 3, 32, 32), ) * 3 + (torch.rand(1, 3, 32, 30), ), r'the four frames must have the same shape'),
])
def test_bad_frames_raise_one_clear_value_error(args, message):
    net = tiny_student()
    with pytest.raises(ValueError, match=message) as info:
        net(*args)
    assert '\n' not in str(info.value) and str(info.value).startswith('STMFNetMini')


@pytest.mark.parametrize('cls, kwargs, message', [
    (STMFNet, dict(pad_multiple=96), r'pad_multiple must be a positive multiple of 64 \(PWC-Net'),
    (STMFNet, dict(pad_multiple=0), r'multiple of 64'),
    (STMFNet, dict(flow_estimator='raft'), r"flow_estimator must be one of pwcnet, dis, got 'raft'"),
    (STMFNetMini, dict(pad_multiple=24), r'pad_multiple must be a positive multiple of 16 .*got 24'),
    (STMFNetMini, dict(pad_multiple='128'), r"got '128'"),
    (STMFNetMini, dict(feature_channels=[16, 32, 64, 128]), r'feature_channels must be 4 integers >= 32 and even'),
    (STMFNetMini, dict(feature_channels=[32, 64, 96]), r'feature_channels must be 4 integers'),
    (STMFNetMini, dict(grid_channels=[16, 0, 46]), r'grid_channels must be 3 integers >= 1'),
    (STMFNetMini, dict(tem_fuse_channels=2.5), r'tem_fuse_channels must be an integer >= 1'),
])
def test_bad_constructor_arguments_raise_value_error(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_pad_multiple_16_is_enough_without_flow_and_64_with_it():
    for height, width in ((16, 48), (31, 17)):
        assert tiny_student(pad_multiple=16).eval()(frames(height, width)).shape == (1, 3, height, width)
    assert tiny_teacher(pad_multiple=64).eval()(frames(65, 20)).shape == (1, 3, 65, 20)


# ----------------------------------------------------------------------------------------------- padding


def test_reflect_pad_matches_torch_and_extends_periodically():
    image = torch.arange(2 * 5 * 4, dtype=torch.float32).view(1, 2, 5, 4)
    assert torch.equal(reflect_pad_to(image, 9, 7), F.pad(image, (0, 3, 0, 4), mode='reflect'))
    row = torch.tensor([[[[1., 2., 3.]]]])
    assert reflect_pad_to(row, 1, 10).flatten().tolist() == [1, 2, 3, 2, 1, 2, 3, 2, 1, 2]
    assert torch.equal(reflect_pad_to(torch.tensor([[[[7.]]]]), 3, 2), torch.full((1, 1, 3, 2), 7.))


# ----------------------------------------------------------------------------------------------- width groups


def conv_like_weights(net):
    """{weight name: output dim} of every conv / linear / transposed conv."""
    dims = {}
    for name, module in net.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.Linear)):
            dims[f'{name}.weight'] = 0
        elif isinstance(module, (nn.ConvTranspose2d, nn.ConvTranspose3d)):
            dims[f'{name}.weight'] = 1
    return dims


def _defaults(cls):
    return {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items() if name != 'self'}


def width_of(config, key):
    arg, index = width_argument(key)
    return config[arg] if index is None else config[arg][index]


@pytest.mark.parametrize('cls', [STMFNet, STMFNetMini])
def test_width_groups_name_existing_weights_of_the_stated_width(cls):
    net, defaults = cls(), _defaults(cls)
    groups = net.width_groups()
    assert list(groups) == WIDTH_KEYS
    params, dims = dict(net.named_parameters()), conv_like_weights(net)
    for key, entries in groups.items():
        assert entries, key
        for entry in entries:
            part_widths = []
            for part in width_entry_parts(entry):
                assert all(dims[name] == dim for name, dim in part), part
                assert len({params[name].shape[dim] for name, dim in part}) == 1, part  # channels live together
                part_widths.append(params[part[0][0]].shape[part[0][1]])
            assert sum(part_widths) == width_of(defaults, key), (key, entry)


@pytest.mark.parametrize('key', WIDTH_KEYS)
def test_width_groups_list_exactly_the_layers_that_output_that_width(key):
    """Widen one argument by 2: the listed weights are exactly those whose output dim grew by their share of it
    (feature widths: each of the two branches grows by 1), except the GridNet blocks that cannot reach the output."""
    base, wider = STMFNetMini(**TINY_DISTINCT_WIDTHS), STMFNetMini(**widened_arguments(TINY_DISTINCT_WIDTHS, key, 2))
    base_params, wider_params = dict(base.named_parameters()), dict(wider.named_parameters())
    parts = [part for entry in base.width_groups()[key] for part in width_entry_parts(entry)]
    growth = 2 // max(len(width_entry_parts(entry)) for entry in base.width_groups()[key])
    old, unused = width_of(TINY_DISTINCT_WIDTHS, key) * growth // 2, set(base.unused_parameter_names())
    changed = {(name, dim) for name, dim in conv_like_weights(base).items()
               if base_params[name].shape[dim] == old and wider_params[name].shape[dim] == old + growth
               and name not in unused}
    assert {pair for part in parts for pair in part} == changed
