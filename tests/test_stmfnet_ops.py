"""The pure-PyTorch ST-MFNet ops (AdaCoF, softmax splatting, correlation) and the Laplacian-pyramid loss.

Every op is checked against a slow, explicit Python-loop reference written from the definition of the original
CuPy kernel (values and gradients, float64), plus hand-computed edge cases: offsets outside the image, negative
offsets (truncation toward zero), dilation > 1, flows splatting outside the frame.
"""
import math

import numpy as np
import pytest
import torch

import basicsr_multigrid  # noqa: F401  (compat fixes + loss registration, before basicsr imports)
from basicsr_multigrid.archs.ops import adacof, correlation, replicate_pad_for_adacof, softsplat
from basicsr_multigrid.archs.ops.fused import call_fused, cpu_compiler_available
from basicsr_multigrid.archs.ops.op_macs import counting_op_macs
from basicsr_multigrid.losses.laplacian_pyramid_loss import LaplacianPyramidLoss

B, C, H, W = 2, 3, 6, 7


def rand(*shape, seed, scale=1.0, shift=0.0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=generator, dtype=torch.float64) * 2 - 1) * scale + shift


def autograd_grads(output, upstream, inputs):
    return torch.autograd.grad(output, inputs, upstream)


# ----------------------------------------------------------------------------------------------------- AdaCoF


def adacof_loop(padded, weight, alpha, beta, dilation, upstream):
    """The CuPy kernel, one output pixel and tap at a time; also the analytic backward (image grad included)."""
    padded, weight, alpha, beta, upstream = (t.detach().numpy() for t in (padded, weight, alpha, beta, upstream))
    batch, channels, hp, wp = padded.shape
    taps, height, width = weight.shape[1:]
    size = math.isqrt(taps)
    out = np.zeros((batch, channels, height, width))
    g_padded, g_weight = np.zeros_like(padded), np.zeros_like(weight)
    g_alpha, g_beta = np.zeros_like(alpha), np.zeros_like(beta)
    for n in range(batch):
        for i in range(height):
            for j in range(width):
                for k in range(size):
                    for m in range(size):  # kernel row k, column m (the kernel's l)
                        t = k * size + m
                        w, a, b = weight[n, t, i, j], alpha[n, t, i, j], beta[n, t, i, j]
                        a_int, b_int = int(a), int(b)  # Python int() truncates toward zero, like C's (int)
                        fa, fb = a - a_int, b - b_int
                        r0 = min(max(i + k * dilation + a_int, 0), hp - 1)
                        r1 = min(max(i + k * dilation + a_int + 1, 0), hp - 1)
                        c0 = min(max(j + m * dilation + b_int, 0), wp - 1)
                        c1 = min(max(j + m * dilation + b_int + 1, 0), wp - 1)
                        for c in range(channels):
                            p00, p10 = padded[n, c, r0, c0], padded[n, c, r1, c0]
                            p01, p11 = padded[n, c, r0, c1], padded[n, c, r1, c1]
                            value = ((1 - fa) * (1 - fb) * p00 + fa * (1 - fb) * p10
                                     + (1 - fa) * fb * p01 + fa * fb * p11)
                            out[n, c, i, j] += w * value
                            g = upstream[n, c, i, j]
                            g_weight[n, t, i, j] += g * value
                            g_alpha[n, t, i, j] += g * w * (-(1 - fb) * p00 + (1 - fb) * p10 - fb * p01 + fb * p11)
                            g_beta[n, t, i, j] += g * w * (-(1 - fa) * p00 - fa * p10 + (1 - fa) * p01 + fa * p11)
                            g_padded[n, c, r0, c0] += g * w * (1 - fa) * (1 - fb)
                            g_padded[n, c, r1, c0] += g * w * fa * (1 - fb)
                            g_padded[n, c, r0, c1] += g * w * (1 - fa) * fb
                            g_padded[n, c, r1, c1] += g * w * fa * fb
    return torch.from_numpy(out), [torch.from_numpy(g) for g in (g_padded, g_weight, g_alpha, g_beta)]


def adacof_inputs(size, dilation, offset_scale, offset_shift=0.0, seed=0, batch=B, height=H, width=W):
    span = (size - 1) * dilation
    padded = rand(batch, C, height + span, width + span, seed=seed)
    weight = rand(batch, size * size, height, width, seed=seed + 1)
    alpha = rand(batch, size * size, height, width, seed=seed + 2, scale=offset_scale, shift=offset_shift)
    beta = rand(batch, size * size, height, width, seed=seed + 3, scale=offset_scale, shift=-offset_shift)
    return [t.requires_grad_() for t in (padded, weight, alpha, beta)]


@pytest.mark.parametrize('size, dilation, offset_scale, offset_shift', [
    (5, 1, 2.5, 0.0),     # ST-MFNet's setting, offsets of both signs
    (3, 2, 1.5, 0.0),     # dilation > 1
    (3, 1, 0.9, -0.6),    # mostly negative fractional offsets: trunc (not floor) extrapolation
    (3, 1, 4.0, 9.0),     # offsets far outside the image: every corner clamped independently
])
def test_adacof_matches_loop_reference(size, dilation, offset_scale, offset_shift):
    inputs = adacof_inputs(size, dilation, offset_scale, offset_shift)
    upstream = rand(B, C, H, W, seed=9)
    out = adacof(*inputs, dilation=dilation)
    expected, expected_grads = adacof_loop(*inputs, dilation, upstream)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    for name, got, want in zip(('input', 'weight', 'alpha', 'beta'), autograd_grads(out, upstream, inputs),
                               expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12, msg=f'grad of {name}')


def test_adacof_truncates_negative_offsets_toward_zero():
    # One tap (F = 1), one column; image rows 2, 1, 4, 9. Hand values of the CuPy rule:
    column = torch.tensor([2., 1., 4., 9.], dtype=torch.float64).view(1, 1, 4, 1)
    weight = torch.ones(1, 1, 4, 1, dtype=torch.float64)
    alpha = torch.tensor([-5.5, 0.0, -0.25, 5.3], dtype=torch.float64).view(1, 1, 4, 1)
    out = adacof(column, weight, alpha, torch.zeros_like(alpha)).flatten().tolist()
    # row 0: A = trunc(-5.5) = -5, fa = -0.5; both corners clamp to row 0 -> 1.5*2 - 0.5*2 = 2
    # row 1: zero offset -> the pixel itself
    # row 2: A = 0 (not -1), fa = -0.25 -> 1.25*P[2] - 0.25*P[3] = 5 - 2.25 = 2.75 (floor would give 3.25)
    # row 3: A = 5, both corners clamp to row 3 -> 9
    assert out == pytest.approx([2.0, 1.0, 2.75, 9.0], abs=1e-12)
    alpha = torch.tensor([0.0, 0.0, -1.5, 0.0], dtype=torch.float64).view(1, 1, 4, 1)
    # A = -1, fa = -0.5: rows 1 and 2 -> 1.5*1 - 0.5*4 = -0.5 (extrapolated, outside the pixel range)
    assert adacof(column, weight, alpha, torch.zeros_like(alpha))[0, 0, 2, 0].item() == pytest.approx(-0.5)


def test_adacof_horizontal_offset_and_grid_sample_disagree_on_negative_fractions():
    row = torch.tensor([0., 1., 4., 9.], dtype=torch.float64).view(1, 1, 1, 4)
    weight = torch.ones(1, 1, 1, 4, dtype=torch.float64)
    beta = torch.full((1, 1, 1, 4), -0.5, dtype=torch.float64)
    out = adacof(row, weight, torch.zeros_like(beta), beta).flatten().tolist()
    # B = 0, fb = -0.5 for every pixel: 1.5*P[j] - 0.5*P[min(j+1, 3)]
    assert out == pytest.approx([-0.5, -0.5, 1.5, 9.0])
    sampled = torch.nn.functional.grid_sample(
        row, torch.stack([torch.linspace(-1, 1, 4, dtype=torch.float64) - 1 / 3, torch.zeros(4, dtype=torch.float64)],
                         -1).view(1, 1, 4, 2), align_corners=True, padding_mode='border').flatten().tolist()
    assert sampled == pytest.approx([0.0, 0.5, 2.5, 6.5])  # floor-based interpolation: a different answer


def test_adacof_zero_offsets_centre_tap_is_identity_on_replicate_padded_image():
    image = rand(B, C, H, W, seed=3)
    for size, dilation in ((5, 1), (3, 2)):
        weight = torch.zeros(B, size * size, H, W, dtype=torch.float64)
        weight[:, size * size // 2] = 1
        zeros = torch.zeros_like(weight)
        out = adacof(replicate_pad_for_adacof(image, size, dilation), weight, zeros, zeros, dilation)
        torch.testing.assert_close(out, image, rtol=0, atol=0)


def test_adacof_gradcheck():
    inputs = adacof_inputs(3, 1, 1.7, seed=20, batch=1, height=3, width=4)
    assert torch.autograd.gradcheck(lambda *x: adacof(*x, dilation=1), inputs)


def test_adacof_float32_and_shape_errors():
    inputs = adacof_inputs(5, 1, 2.0)
    out32 = adacof(*[t.detach().float() for t in inputs])
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), adacof(*[t.detach() for t in inputs]), rtol=1e-5, atol=1e-5)
    padded, weight, alpha, beta = (t.detach() for t in inputs)
    with pytest.raises(ValueError, match='padded'):
        adacof(padded[..., 1:], weight, alpha, beta)
    with pytest.raises(ValueError, match='F\\*F'):
        adacof(padded, weight[:, :24], alpha[:, :24], beta[:, :24])


@pytest.mark.skipif(not cpu_compiler_available(), reason='needs a C++ compiler for inductor')
def test_fused_adacof_compiles_without_gradients_and_matches_eager(compiled_op_calls):
    compiled_calls = compiled_op_calls
    inputs = adacof_inputs(5, 1, offset_scale=3.0, height=9, width=11)
    padded, weight, alpha, beta = (x.detach().float() for x in inputs)
    reference = adacof(padded, weight, alpha, beta)
    with torch.no_grad():
        fused = call_fused(adacof, padded, weight, alpha, beta, dilation=1)
    assert compiled_calls == ['adacof']
    assert torch.allclose(fused, reference, atol=1e-5, rtol=0)
    # with gradients recorded the eager op runs, and its result has a graph
    traced = call_fused(adacof, padded.requires_grad_(), weight, alpha, beta, dilation=1)
    assert compiled_calls == ['adacof'] and traced.grad_fn is not None
    assert torch.equal(traced.detach(), reference)


def test_op_macs_count_each_call_by_its_shape():
    padded, weight, alpha, beta = (x.detach() for x in adacof_inputs(5, 1, offset_scale=2.0))
    values, flow = splat_inputs(2.5)[:2]
    first, second = rand(B, 8, H, W, seed=4), rand(B, 8, H, W, seed=5)
    with counting_op_macs() as tally:
        adacof(padded, weight, alpha, beta)
        adacof(padded, weight, alpha, beta)
        softsplat(values.detach(), flow.detach(), mode='average')
        correlation(first, second, max_displacement=2)
    assert tally['adacof'] == 2 * B * H * W * 25 * (4 * C + 4)
    assert tally['softsplat'] == B * (values.shape[1] + 1) * H * W * 4  # + the normaliser channel
    assert tally['correlation'] == B * 8 * H * W * 25
    with counting_op_macs() as tally:
        pass
    assert not tally


# ----------------------------------------------------------------------------------------------------- softsplat


def splat_loop(values, flow, upstream=None):
    """Summation splat pixel by pixel (floor corners, drop out-of-frame ones) and its analytic backward."""
    values, flow = values.detach().numpy(), flow.detach().numpy()
    batch, channels, height, width = values.shape
    out = np.zeros_like(values)
    g_values, g_flow = np.zeros_like(values), np.zeros_like(flow)
    upstream = np.zeros_like(values) if upstream is None else upstream.detach().numpy()
    for n in range(batch):
        for y in range(height):
            for x in range(width):
                tx, ty = x + flow[n, 0, y, x], y + flow[n, 1, y, x]
                x0, y0 = math.floor(tx), math.floor(ty)
                # (corner x, corner y, weight, d weight / d u, d weight / d v)
                corners = ((x0, y0, (x0 + 1 - tx) * (y0 + 1 - ty), -(y0 + 1 - ty), -(x0 + 1 - tx)),
                           (x0 + 1, y0, (tx - x0) * (y0 + 1 - ty), (y0 + 1 - ty), -(tx - x0)),
                           (x0, y0 + 1, (x0 + 1 - tx) * (ty - y0), -(ty - y0), (x0 + 1 - tx)),
                           (x0 + 1, y0 + 1, (tx - x0) * (ty - y0), (ty - y0), (tx - x0)))
                for cx, cy, w, dw_du, dw_dv in corners:
                    if 0 <= cx < width and 0 <= cy < height:
                        out[n, :, cy, cx] += w * values[n, :, y, x]
                        g_values[n, :, y, x] += w * upstream[n, :, cy, cx]
                        g_flow[n, 0, y, x] += dw_du * (values[n, :, y, x] * upstream[n, :, cy, cx]).sum()
                        g_flow[n, 1, y, x] += dw_dv * (values[n, :, y, x] * upstream[n, :, cy, cx]).sum()
    return torch.from_numpy(out), [torch.from_numpy(g_values), torch.from_numpy(g_flow)]


def softsplat_loop(values, flow, metric, mode):
    """The mode wrappers of the reference around the loop splat (normaliser zeros -> 1)."""
    values, flow, metric = values.detach(), flow.detach(), metric.detach()
    if mode == 'summation':
        return splat_loop(values, flow)[0]
    importance = {'average': torch.ones_like(metric), 'linear': metric, 'softmax': metric.exp()}[mode]
    splatted = splat_loop(torch.cat([values * importance, importance], 1), flow)[0]
    normaliser = splatted[:, -1:].clone()
    normaliser[normaliser == 0] = 1
    return splatted[:, :-1] / normaliser


def splat_inputs(flow_scale, seed=0, batch=B, height=H, width=W):
    values = rand(batch, C, height, width, seed=seed).requires_grad_()
    flow = rand(batch, 2, height, width, seed=seed + 1, scale=flow_scale).requires_grad_()
    metric = rand(batch, 1, height, width, seed=seed + 2, scale=2.0).requires_grad_()
    return values, flow, metric


@pytest.mark.parametrize('flow_scale', [0.9, 2.5, 6.0])  # sub-pixel, a few pixels, mostly out of the frame
def test_softsplat_summation_matches_loop_reference_with_gradients(flow_scale):
    values, flow, _ = splat_inputs(flow_scale)
    upstream = rand(B, C, H, W, seed=7)
    out = softsplat(values, flow, mode='summation')
    expected, expected_grads = splat_loop(values, flow, upstream)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    for name, got, want in zip(('input', 'flow'), autograd_grads(out, upstream, [values, flow]), expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12, msg=f'grad of {name}')


@pytest.mark.parametrize('mode', ['summation', 'average', 'linear', 'softmax'])
def test_softsplat_modes_match_loop_reference(mode):
    values, flow, metric = splat_inputs(2.5, seed=30)
    if mode == 'linear':
        metric = metric.detach().abs().add(0.1).requires_grad_()  # a positive weight, as 'linear' intends
    out = softsplat(values, flow, metric, mode=mode)
    torch.testing.assert_close(out, softsplat_loop(values, flow, metric, mode), rtol=1e-12, atol=1e-12)
    holes = splat_loop(torch.ones(B, 1, H, W, dtype=torch.float64), flow)[0] == 0  # nothing landed there
    assert holes.any() and (out.masked_select(holes.expand_as(out)) == 0).all()


@pytest.mark.parametrize('mode', ['summation', 'average', 'linear', 'softmax'])
def test_softsplat_gradcheck(mode):
    values, flow, metric = splat_inputs(1.6, seed=40, batch=1, height=3, width=4)
    if mode == 'linear':
        metric = metric.detach().abs().add(0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda v, f, m: softsplat(v, f, m, mode=mode), (values, flow, metric))


def test_softsplat_hand_values_floor_and_dropping():
    values = torch.tensor([1., 10., 100.], dtype=torch.float64).view(1, 1, 1, 3)
    # pixel 0 -> x = 4 (dropped), pixel 1 -> x = 0.75 (floor 0), pixel 2 -> x = -0.5 (corner -1 dropped, 0 kept)
    flow = torch.zeros(1, 2, 1, 3, dtype=torch.float64)
    flow[0, 0, 0] = torch.tensor([4.0, -0.25, -2.5])
    out = softsplat(values, flow, mode='summation').flatten().tolist()
    assert out == pytest.approx([10 * 0.25 + 100 * 0.5, 10 * 0.75, 0.0])
    metric = torch.tensor([0., math.log(3.0), 0.], dtype=torch.float64).view(1, 1, 1, 3)
    out = softsplat(values, flow, metric, mode='softmax').flatten().tolist()
    # x = 0: (3 * 0.25 * 10 + 0.5 * 100) / (3 * 0.25 + 0.5); x = 1: only pixel 1; x = 2: hole -> 0
    assert out == pytest.approx([(7.5 + 50) / 1.25, 10.0, 0.0])


def test_softsplat_identity_shift_and_all_out_of_frame():
    values, _, metric = splat_inputs(1.0, seed=50)
    zero = torch.zeros(B, 2, H, W, dtype=torch.float64)
    for mode in ('summation', 'average', 'linear', 'softmax'):
        z = metric.abs() + 0.1 if mode == 'linear' else metric
        torch.testing.assert_close(softsplat(values, zero, z, mode=mode), values, rtol=1e-12, atol=1e-12)
    shift = zero.clone()
    shift[:, 0] = 1.0  # one pixel to the right: column 0 empty, the last column leaves the frame
    shifted = softsplat(values, shift, metric, mode='softmax')
    torch.testing.assert_close(shifted[..., 1:], values[..., :-1], rtol=1e-12, atol=1e-12)
    assert (shifted[..., 0] == 0).all()
    away = zero.clone()
    away[:, 1] = -H - 0.5
    assert (softsplat(values, away, metric, mode='softmax') == 0).all()


def test_softsplat_subtract_max_is_equivalent_and_avoids_overflow():
    values, flow, metric = (t.detach().float() for t in splat_inputs(1.5, seed=60))
    reference = softsplat(values, flow, metric, mode='softmax')
    big = metric + 200.0  # exp(200) overflows float32
    assert not torch.isfinite(softsplat(values, flow, big, mode='softmax')).all()
    torch.testing.assert_close(softsplat(values, flow, big, mode='softmax', subtract_max=True), reference,
                               rtol=1e-5, atol=1e-5)


def test_softsplat_argument_errors():
    values, flow, metric = splat_inputs(1.0)
    with pytest.raises(ValueError, match='mode'):
        softsplat(values, flow, metric, mode='max')
    with pytest.raises(ValueError, match='metric'):
        softsplat(values, flow, None, mode='softmax')
    with pytest.raises(ValueError, match='flow'):
        softsplat(values, flow[:, :1], metric)


# --------------------------------------------------------------------------------------------------- correlation


def correlation_loop(first, second, max_displacement, stride, upstream):
    first, second, upstream = (t.detach().numpy() for t in (first, second, upstream))
    batch, channels, height, width = first.shape
    shifts = list(range(-max_displacement, max_displacement + 1, stride))
    out = np.zeros((batch, len(shifts) ** 2, height, width))
    g_first, g_second = np.zeros_like(first), np.zeros_like(second)
    for n in range(batch):
        for a, dy in enumerate(shifts):
            for b, dx in enumerate(shifts):
                d = a * len(shifts) + b
                for y in range(height):
                    for x in range(width):
                        if 0 <= y + dy < height and 0 <= x + dx < width:  # zero padding outside
                            partner = second[n, :, y + dy, x + dx]
                            out[n, d, y, x] = (first[n, :, y, x] * partner).sum() / channels
                            g_first[n, :, y, x] += upstream[n, d, y, x] * partner / channels
                            g_second[n, :, y + dy, x + dx] += upstream[n, d, y, x] * first[n, :, y, x] / channels
    return torch.from_numpy(out), [torch.from_numpy(g_first), torch.from_numpy(g_second)]


@pytest.mark.parametrize('method', ['shift', 'unfold'])
@pytest.mark.parametrize('max_displacement, stride', [(4, 1), (2, 2), (1, 1)])
def test_correlation_matches_loop_reference_with_gradients(method, max_displacement, stride):
    first = rand(B, 5, H, W, seed=70).requires_grad_()
    second = rand(B, 5, H, W, seed=71).requires_grad_()
    channels = (2 * max_displacement // stride + 1) ** 2
    upstream = rand(B, channels, H, W, seed=72)
    out = correlation(first, second, max_displacement, stride, method=method)
    assert out.shape == (B, channels, H, W)
    expected, expected_grads = correlation_loop(first, second, max_displacement, stride, upstream)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    for name, got, want in zip(('first', 'second'), autograd_grads(out, upstream, [first, second]), expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12, msg=f'grad of {name}')


def test_correlation_pwc_defaults_centre_channel_and_border_zeros():
    features = rand(1, 4, H, W, seed=80)
    out = correlation(features, features)
    assert out.shape == (1, 81, H, W)  # PWC-Net: displacement 4, stride 1
    torch.testing.assert_close(out[:, 40], features.pow(2).mean(1))  # (dy, dx) = (0, 0) is channel 4*9 + 4
    assert (out[:, 0, :4, :] == 0).all() and (out[:, 0, :, :4] == 0).all()  # (dy, dx) = (-4, -4) off the frame
    shifted = torch.roll(features, shifts=(1, -2), dims=(2, 3))  # second[y + 1, x - 2] == first[y, x] inside
    torch.testing.assert_close(correlation(features, shifted)[:, (1 + 4) * 9 + (-2 + 4), :-1, 2:],
                               features.pow(2).mean(1)[:, :-1, 2:])


def test_correlation_gradcheck_and_errors():
    first = rand(1, 2, 3, 4, seed=90).requires_grad_()
    second = rand(1, 2, 3, 4, seed=91).requires_grad_()
    for method in ('shift', 'unfold'):
        assert torch.autograd.gradcheck(lambda a, b: correlation(a, b, 2, 1, method=method), (first, second))
    with pytest.raises(ValueError, match='multiple'):
        correlation(first, second, 3, 2)
    with pytest.raises(ValueError, match='equal-shaped'):
        correlation(first, second[:, :1])


# ------------------------------------------------------------------------------------------ Laplacian-pyramid loss


def reference_pyramid_loss(x, y, levels):
    """Independent construction: separable 1-D binomial passes with explicit reflect indexing, interleaving by
    stacking, per-level sum-L1 with weights 2^i."""
    taps = torch.tensor([1., 4., 6., 4., 1.], dtype=x.dtype) / 16

    def blur_axis(t, axis):
        n = t.shape[axis]
        reflect = [abs(i) if i < 0 else (2 * (n - 1) - i if i > n - 1 else i) for i in range(-2, n + 2)]
        t = t.index_select(axis, torch.tensor(reflect))
        return sum(taps[k] * t.narrow(axis, k, n) for k in range(5))

    def blur(t):
        return blur_axis(blur_axis(t, 2), 3)

    def expand(t):
        zeros = torch.zeros_like(t)
        rows = torch.stack([t, zeros], dim=3).flatten(2, 3)            # (b, c, 2h, w): t on even rows
        full = torch.stack([rows, torch.zeros_like(rows)], dim=4).flatten(3, 4)
        return 4 * blur(full)

    def pyramid(t):
        out = []
        for _ in range(levels - 1):
            blurred = blur(t)
            reduced = (blurred[:, :, ::2, ::2] + blurred[:, :, 1::2, ::2] + blurred[:, :, ::2, 1::2]
                       + blurred[:, :, 1::2, 1::2]) / 4
            out.append(t - expand(reduced))
            t = reduced
        return out + [t]

    return sum(2 ** i * (a - b).abs().sum() for i, (a, b) in enumerate(zip(pyramid(x), pyramid(y))))


def test_laplacian_loss_zero_for_identical_inputs_and_hand_value_for_constants():
    loss = LaplacianPyramidLoss(reduction='sum').double()
    image = rand(2, 3, 32, 32, seed=100)
    assert loss(image, image).item() == 0.0
    # Constant images: every band is exactly 0 (the expanded blur of a constant is the constant) and the 2x2
    # low-pass of the 5th level keeps the constant: 16 * |0.7 - 0.2| * (2 * 3 * 2 * 2) = 192.
    a, b = torch.full((2, 3, 32, 32), 0.7, dtype=torch.float64), torch.full((2, 3, 32, 32), 0.2, dtype=torch.float64)
    assert loss(a, b).item() == pytest.approx(192.0, rel=1e-12)
    mean_loss = LaplacianPyramidLoss(loss_weight=2.0, reduction='mean').double()
    assert mean_loss(a, b).item() == pytest.approx(2.0 * 192.0 / (2 * 3 * 32 * 32), rel=1e-12)
    single = LaplacianPyramidLoss(max_levels=1, reduction='sum').double()
    assert single(image, a).item() == pytest.approx((image - a).abs().sum().item(), rel=1e-12)


@pytest.mark.parametrize('levels, size', [(5, 32), (3, 16), (2, 4)])
def test_laplacian_loss_matches_independent_reference(levels, size):
    pred, target = rand(2, 3, size, size, seed=110), rand(2, 3, size, size, seed=111)
    loss = LaplacianPyramidLoss(max_levels=levels, reduction='sum').double()
    torch.testing.assert_close(loss(pred, target), reference_pyramid_loss(pred, target, levels), rtol=1e-12,
                               atol=1e-10)
    # the pyramid is a perfect reconstruction code: collapsing it gives the image back
    bands = loss.pyramid(pred)
    image = bands[-1]
    for band in reversed(bands[:-1]):
        image = band + loss.expand(image)
    torch.testing.assert_close(image, pred, rtol=1e-12, atol=1e-12)


def test_laplacian_loss_through_build_loss_filter_is_a_buffer_and_gradients_flow():
    from basicsr.losses import build_loss
    loss = build_loss({'type': 'LaplacianPyramidLoss', 'reduction': 'sum'})
    assert isinstance(loss, LaplacianPyramidLoss)
    assert list(loss.parameters()) == []
    assert dict(loss.named_buffers())['kernel'].shape == (3, 1, 5, 5)
    assert 'kernel' not in loss.state_dict()
    torch.testing.assert_close(loss.kernel.sum(dim=(1, 2, 3)), torch.ones(3))
    pred = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(120), requires_grad=True)
    target = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(121))
    loss(pred, target).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    small = LaplacianPyramidLoss(max_levels=2, channels=2).double()
    x, y = rand(1, 2, 4, 4, seed=122).requires_grad_(), rand(1, 2, 4, 4, seed=123)
    assert torch.autograd.gradcheck(lambda t: small(t, y), (x,), fast_mode=True)


def test_laplacian_loss_rejects_bad_shapes():
    loss = LaplacianPyramidLoss()
    with pytest.raises(ValueError, match='divisible'):
        loss(torch.zeros(1, 3, 40, 40), torch.zeros(1, 3, 40, 40))
    with pytest.raises(ValueError, match='too small'):
        loss(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match='reduction'):
        LaplacianPyramidLoss(reduction='none')
