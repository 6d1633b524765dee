"""AdaCoF (adaptive collaboration of flows) warping in pure PyTorch, matching ST-MFNet's CuPy ``FunctionAdaCoF``.

Reference semantics (the CuPy kernel, reproduced exactly so that pretrained ST-MFNet / ST-MFNet Mini weights
give the same frames):

    out[b, c, i, j] = sum_{k, l < F} weight[b, k*F + l, i, j] * sample(P[b, c], i + k*d + alpha, j + l*d + beta)

with ``alpha = alpha[b, k*F + l, i, j]`` (vertical) and ``beta = beta[b, k*F + l, i, j]`` (horizontal), ``d`` the
dilation and ``P`` the *already padded* input. ``sample`` is the kernel's own bilinear rule:

* ``A = trunc(alpha)`` (the C ``(int)`` cast, i.e. rounding toward zero, **not** floor), ``fa = alpha - A``;
  ``B``, ``fb`` likewise from ``beta``;
* the four corners ``(i+k*d+A, j+l*d+B)``, ``(+1, 0)``, ``(0, +1)``, ``(+1, +1)`` are each clamped independently
  to ``[0, Hp-1] x [0, Wp-1]``;
* value = ``(1-fa)(1-fb) P00 + fa(1-fb) P10 + (1-fa) fb P01 + fa fb P11``.

For a negative non-integer offset ``fa < 0``, so the rule *extrapolates* along ``[p, p+1]`` instead of
interpolating on ``[p-1, p]``; ``grid_sample`` cannot reproduce that, hence the explicit gathers here.

Differences from the CuPy op, all deliberate: every floating dtype and device works; gradients come from autograd,
so the gradient w.r.t. the image is the true one (the CuPy backward returns zeros for it) and the weight / offset
gradients sum over all channels (the CuPy backward hard-codes 3). Offsets are integer-truncated without
gradient, exactly like the kernel, so d out / d alpha is the slope of the current [p, p+1] segment.
"""
import math

import torch
import torch.nn.functional as F

from basicsr_multigrid.archs.ops.op_macs import record


def adacof_padding(kernel_size, dilation=1):
    """(left, right, top, bottom) replicate padding that makes the AdaCoF output as large as the unpadded image.

    The total padding is ``(kernel_size - 1) * dilation`` per axis, floor of half before and the rest after
    (ST-MFNet: 5x5 kernel, dilation 1 -> ``ReplicationPad2d(2)``).
    """
    total = (kernel_size - 1) * dilation
    before, after = total // 2, total - total // 2
    return before, after, before, after


def replicate_pad_for_adacof(image, kernel_size=5, dilation=1):
    """Replicate-pad an (B, C, H, W) image the way ST-MFNet does before calling :func:`adacof`."""
    return F.pad(image, adacof_padding(kernel_size, dilation), mode='replicate')


def _kernel_size(weight):
    taps = int(weight.shape[1])  # int(): under jit tracing (complexity counters) shapes are tensors
    size = math.isqrt(taps)
    if size * size != taps:
        raise ValueError(f'weight must have F*F channels (one per kernel tap), got {taps}')
    return size


def _check_shapes(input, weight, alpha, beta, kernel_size, dilation):
    if input.dim() != 4 or weight.dim() != 4:
        raise ValueError(f'expected 4-D input and weight, got {tuple(input.shape)} and {tuple(weight.shape)}')
    if alpha.shape != weight.shape or beta.shape != weight.shape:
        raise ValueError(f'alpha {tuple(alpha.shape)} and beta {tuple(beta.shape)} must match weight '
                         f'{tuple(weight.shape)}')
    if input.shape[0] != weight.shape[0]:
        raise ValueError(f'batch mismatch: input {input.shape[0]}, weight {weight.shape[0]}')
    span = (kernel_size - 1) * dilation
    height, width = weight.shape[2:]
    if input.shape[2] != height + span or input.shape[3] != width + span:
        raise ValueError(f'input must be the padded image, (H + {span}) x (W + {span}) = '
                         f'{height + span} x {width + span} for a {kernel_size}x{kernel_size} kernel with dilation '
                         f'{dilation}; got {input.shape[2]} x {input.shape[3]} (see replicate_pad_for_adacof)')


def _tap_origins(kernel_size, dilation, height, width, device):
    """Integer sample origins before offsets: rows ``i + k*d`` and columns ``j + l*d``, each (F*F, H, W)."""
    taps = torch.arange(kernel_size, device=device) * dilation
    rows = taps.view(-1, 1, 1, 1) + torch.arange(height, device=device).view(1, 1, -1, 1)  # (F, 1, H, 1)
    cols = taps.view(1, -1, 1, 1) + torch.arange(width, device=device).view(1, 1, 1, -1)   # (1, F, 1, W)
    shape = (kernel_size, kernel_size, height, width)
    return rows.expand(shape).reshape(-1, height, width), cols.expand(shape).reshape(-1, height, width)


def _split_offset(offset):
    """C-style split: integer part rounded toward zero (no gradient) and the signed fraction (with gradient)."""
    whole = torch.trunc(offset.detach())
    return whole.long(), offset - whole


def adacof(input, weight, alpha, beta, dilation=1):
    """AdaCoF warp of a pre-padded image (exact port of ST-MFNet's ``FunctionAdaCoF``).

    Args:
        input: (B, C, H + (F-1)*d, W + (F-1)*d) image, already padded by the caller. ST-MFNet replicate-pads by
            2 on every side (F = 5, d = 1); :func:`replicate_pad_for_adacof` does exactly that.
        weight: (B, F*F, H, W) per-pixel tap weights (softmax-normalised in ST-MFNet, but any values work).
        alpha: (B, F*F, H, W) vertical offsets in pixels, tap ``k*F + l`` for kernel row k, column l.
        beta: (B, F*F, H, W) horizontal offsets in pixels.
        dilation: spacing ``d`` of the kernel taps in pixels.

    Returns:
        (B, C, H, W) tensor; differentiable w.r.t. input, weight, alpha and beta.

    Cost: each corner is one gather of (B, C, F*F, H, W) values, weighted and summed over the taps at once; the
    bilinear weights are folded into the tap weights at (B, F*F, H, W), without the channel factor.
    """
    kernel_size = _kernel_size(weight)
    _check_shapes(input, weight, alpha, beta, kernel_size, dilation)
    batch, channels, padded_h, padded_w = input.shape
    record('adacof', weight.numel() * (4 * channels + 4))

    origin_rows, origin_cols = _tap_origins(kernel_size, dilation, *weight.shape[2:], input.device)
    row_shift, frac_row = _split_offset(alpha)
    col_shift, frac_col = _split_offset(beta)
    top = origin_rows + row_shift  # (B, F*F, H, W), in padded coordinates
    left = origin_cols + col_shift
    # The kernel clamps each corner on its own (not the interpolation point), so clamp after adding +1.
    row_starts = (top.clamp(0, padded_h - 1) * padded_w, (top + 1).clamp(0, padded_h - 1) * padded_w)
    cols = (left.clamp(0, padded_w - 1), (left + 1).clamp(0, padded_w - 1))
    weight_left, weight_right = weight * (1 - frac_col), weight * frac_col
    corners = (((0, 0), (1 - frac_row) * weight_left), ((1, 0), frac_row * weight_left),
               ((0, 1), (1 - frac_row) * weight_right), ((1, 1), frac_row * weight_right))

    flat = input.reshape(batch, channels, padded_h * padded_w)
    output = None
    for (row, col), corner_weight in corners:
        index = (row_starts[row] + cols[col]).view(batch, 1, -1).expand(-1, channels, -1)
        values = flat.gather(2, index).view(batch, channels, *corner_weight.shape[1:])
        term = (values * corner_weight.unsqueeze(1)).sum(dim=2)
        output = term if output is None else output + term
    return output
