"""basicsr_multigrid.archs.flow_warp: basicsr's flow_warp with its base grid made on the device and cached (no
host-to-device copy per warp), bound in every basicsr module whose networks this package trains; its outputs and
gradients equal basicsr's, and so do those of BasicVSR, IconVSR and BasicVSR++."""
import itertools

import pytest
import torch
from basicsr.archs import arch_util
from basicsr.archs.basicvsr_arch import BasicVSR, IconVSR
from basicsr.archs.basicvsrpp_arch import BasicVSRPlusPlus

import basicsr_multigrid.archs.flow_warp as warping
from basicsr_multigrid.archs import small_input_flow

BASICSR_FLOW_WARP = arch_util.flow_warp  # basicsr's own, which the package leaves in arch_util
MODES = list(itertools.product(('bilinear', 'nearest'), ('zeros', 'border', 'reflection'), (True, False)))


def warp_inputs(n, c, h, w, dtype, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=generator, dtype=dtype)
    flow = 3 * torch.randn(n, h, w, 2, generator=generator, dtype=dtype)  # some samples land outside
    return x, flow


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('size', [(1, 5), (7, 9), (16, 16), (33, 20)])
@pytest.mark.parametrize('interp_mode, padding_mode, align_corners', MODES)
def test_equals_basicsr_flow_warp_outputs_and_gradients(dtype, size, interp_mode, padding_mode, align_corners):
    kwargs = dict(interp_mode=interp_mode, padding_mode=padding_mode, align_corners=align_corners)
    results = []
    for warp in (warping.flow_warp, BASICSR_FLOW_WARP):
        x, flow = warp_inputs(2, 3, *size, dtype)
        x.requires_grad_(True)
        flow.requires_grad_(True)
        out = warp(x, flow, **kwargs)
        (out * torch.linspace(-1, 1, out.numel(), dtype=dtype).view_as(out)).sum().backward()
        results.append((out.detach(), x.grad, flow.grad))
    (out, x_grad, flow_grad), (expected, expected_x_grad, expected_flow_grad) = results
    assert out.dtype == expected.dtype
    assert torch.equal(out, expected)
    assert torch.equal(x_grad, expected_x_grad)
    assert torch.equal(flow_grad, expected_flow_grad)


def test_equals_basicsr_flow_warp_under_bf16_autocast_beyond_256_px():
    """Under autocast, x arrives in bf16 (grid_sample itself runs in fp32); basicsr's grid rounds the integers
    above 256 through bf16, so the cache must keep a bf16 grid apart from the fp32 one."""
    x, flow = warp_inputs(1, 2, 3, 300, torch.float32)
    assert torch.equal(warping.flow_warp(x, flow), BASICSR_FLOW_WARP(x, flow))  # caches the fp32 grid first
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out, expected = warping.flow_warp(x.bfloat16(), flow), BASICSR_FLOW_WARP(x.bfloat16(), flow)
    assert torch.equal(out, expected)


def test_default_arguments_are_basicsrs():
    x, flow = warp_inputs(1, 2, 6, 8, torch.float32)
    assert torch.equal(warping.flow_warp(x, flow), BASICSR_FLOW_WARP(x, flow))
    assert warping.flow_warp.__defaults__ == BASICSR_FLOW_WARP.__defaults__
    with pytest.raises(AssertionError):
        warping.flow_warp(x, flow[:, :5])


def test_basicsr_modules_and_small_input_flow_warp_with_the_package_function():
    """`import basicsr_multigrid` (conftest) rebinds the name in basicsr's modules; arch_util keeps basicsr's."""
    import importlib
    trained = ('basicsr.archs.spynet_arch', 'basicsr.archs.basicvsr_arch', 'basicsr.archs.basicvsrpp_arch')
    assert set(trained) <= set(warping.BASICSR_MODULES)
    for name in trained + warping.BASICSR_MODULES:
        assert importlib.import_module(name).flow_warp is warping.flow_warp, name
    assert small_input_flow.flow_warp is warping.flow_warp
    assert arch_util.flow_warp.__module__ == 'basicsr.archs.arch_util'
    warping.use_device_grid_flow_warp()  # idempotent
    assert all(importlib.import_module(name).flow_warp is warping.flow_warp for name in warping.BASICSR_MODULES)


def test_grid_is_cached_per_size_device_and_dtype_without_autograd_history():
    cpu = torch.device('cpu')
    warping.base_grid.cache_clear()
    with torch.inference_mode():  # a grid first made in inference mode must still serve training
        first = warping.base_grid(4, 5, cpu, torch.float32)
    assert warping.base_grid(4, 5, cpu, torch.float32) is first
    assert warping.base_grid(4, 5, cpu, torch.float64) is not first
    assert warping.base_grid(5, 4, cpu, torch.float32) is not first
    assert not first.requires_grad and first.grad_fn is None and not first.is_inference()
    assert first.shape == (4, 5, 2) and first.dtype == torch.float32 and first.device == cpu
    before = first.clone()
    x, flow = warp_inputs(1, 2, 4, 5, torch.float32)
    flow.requires_grad_(True)
    warping.flow_warp(x, flow).sum().backward()  # a training use leaves the shared grid as it was
    assert torch.equal(first, before) and first.grad is None and not first.requires_grad
    assert warping.base_grid.cache_info().hits >= 2


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_grid_is_basicsrs_including_its_rounding_through_the_input_dtype(dtype):
    h, w = 3, 300  # bf16 holds the integers exactly up to 256 only; basicsr's grid rounds them, and so does ours
    like = torch.zeros(1, dtype=dtype)
    grid_y, grid_x = torch.meshgrid(torch.arange(0, h).type_as(like), torch.arange(0, w).type_as(like), indexing='ij')
    expected = torch.stack((grid_x, grid_y), 2).float()
    assert torch.equal(warping.make_grid(h, w, torch.device('cpu'), dtype), expected)


def outputs_with_package_and_basicsr_warp(monkeypatch, net, *inputs):
    """The network's outputs warping with the package's flow_warp, then with basicsr's bound everywhere instead;
    both warps must actually be used."""
    calls = []

    def counted_basicsr_flow_warp(*args, **kwargs):
        calls.append(1)
        return BASICSR_FLOW_WARP(*args, **kwargs)

    with torch.no_grad():
        before = warping.base_grid.cache_info()
        ours = net(*inputs)
        after = warping.base_grid.cache_info()
        assert after.hits + after.misses > before.hits + before.misses
        for name in warping.BASICSR_MODULES:
            monkeypatch.setattr(f'{name}.flow_warp', counted_basicsr_flow_warp)
        monkeypatch.setattr(small_input_flow, 'flow_warp', counted_basicsr_flow_warp)
        try:
            theirs = net(*inputs)
        finally:
            monkeypatch.undo()
    assert calls
    return ours, theirs


@pytest.mark.parametrize('size', [(32, 32), (16, 20), (36, 44)])  # (16, 20): SpyNet's small-input path (B17)
def test_basicvsr_outputs_equal_with_basicsr_warp(monkeypatch, size):
    torch.manual_seed(0)
    net = BasicVSR(num_feat=4, num_block=1, spynet_path=None).eval()
    ours, theirs = outputs_with_package_and_basicsr_warp(monkeypatch, net, torch.rand(2, 3, 3, *size))
    assert torch.equal(ours, theirs)


def test_iconvsr_outputs_equal_with_basicsr_warp(monkeypatch):
    torch.manual_seed(0)
    net = IconVSR(num_feat=8, num_block=1, keyframe_stride=5, temporal_padding=2, spynet_path=None,
                  edvr_path=None).eval()
    ours, theirs = outputs_with_package_and_basicsr_warp(monkeypatch, net, torch.rand(1, 5, 3, 32, 32))
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize('size', [(32, 32), (64, 64)])  # 32: the small-input path (B18); 64: basicsr's forward
def test_basicvsrpp_outputs_equal_with_basicsr_warp(monkeypatch, size):
    torch.manual_seed(0)
    net = BasicVSRPlusPlus(mid_channels=8, num_blocks=1).eval()
    with torch.no_grad():  # offsets large enough that the second-order alignment's warps matter
        for module in net.deform_align.values():
            module.conv_offset[-1].weight.normal_(0, 0.1)
    ours, theirs = outputs_with_package_and_basicsr_warp(monkeypatch, net, torch.rand(1, 3, 3, *size))
    assert torch.equal(ours, theirs)


def test_basicvsr_training_gradients_equal_with_basicsr_warp(monkeypatch):
    torch.manual_seed(0)
    net = BasicVSR(num_feat=4, num_block=1, spynet_path=None)
    lq = torch.rand(1, 3, 3, 32, 32)
    grads = []
    for warp in (warping.flow_warp, BASICSR_FLOW_WARP):
        for name in warping.BASICSR_MODULES:
            monkeypatch.setattr(f'{name}.flow_warp', warp)
        monkeypatch.setattr(small_input_flow, 'flow_warp', warp)
        net.zero_grad()
        net(lq).square().mean().backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    assert all(torch.equal(ours, theirs) for ours, theirs in zip(*grads))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_no_host_sync_in_flow_warp_or_a_basicvsr_training_step():
    """Under `set_sync_debug_mode('error')` a host sync raises: basicsr's flow_warp syncs (its grid is copied from
    the CPU), the package's does not, nor does a whole BasicVSR forward and backward (SpyNet's small-input path
    included) once warmed up."""
    device = torch.device('cuda')
    x, flow = (t.to(device) for t in warp_inputs(2, 4, 16, 20, torch.float32))
    torch.manual_seed(0)
    net = BasicVSR(num_feat=8, num_block=1, spynet_path=None).to(device)
    clips = [torch.rand(2, 4, 3, *size, device=device) for size in ((32, 32), (16, 20))]

    def step():
        warping.flow_warp(x, flow)
        for lq in clips:
            net(lq).mean().backward()

    step()  # warm-up: CUDA context, cuDNN and the grid cache
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode('error')
    try:
        with pytest.raises(RuntimeError, match='synchroniz'):
            BASICSR_FLOW_WARP(x, flow)
        step()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    torch.cuda.synchronize()
    assert warping.base_grid(16, 20, x.device, x.dtype).device == x.device
