"""Forward warping by splatting (Niklaus & Liu, CVPR 2020) in pure PyTorch, matching the CuPy ``softsplat``
used by ST-MFNet's teacher (``ModuleSoftsplat('softmax')``).

Core op (``summation`` splat): every source pixel (x, y) of ``input`` is pushed to (x + u, y + v), with
``u = flow[:, 0]`` (horizontal) and ``v = flow[:, 1]`` (vertical) in pixels. Its value is added to the four
integer neighbours of the target, found with **floor** (``x0 = floor(x + u)``, ``x1 = x0 + 1``, same for y),
with bilinear weights ``(1 - |dx|)(1 - |dy|)`` (``dx``, ``dy``: distance of the target to that corner);
neighbours outside the frame are dropped (no clamping).

Modes (a final divide-by-splatted-normaliser in all but ``summation``; normaliser zeros, i.e. holes that no
source reached, are replaced by 1 so holes come out as 0):

* ``summation``: the raw splat of ``input``; ``metric`` is ignored.
* ``average``:   splat ``[input, 1]``; output = splat(input) / splat(1).
* ``linear``:    splat ``[input * metric, metric]``; output = splat(input * Z) / splat(Z).
* ``softmax``:   splat ``[input * exp(metric), exp(metric)]``; output = splat(input e^Z) / splat(e^Z).
  ST-MFNet uses Z = s * mean_c |I_a - backwarp(I_b, F_a->b)| with a learnable s (initialised to -1).

The reference does not subtract max(Z) before ``exp``; ``subtract_max=True`` subtracts a per-image constant
(detached), which leaves the softmax result unchanged (it cancels in the ratio) but avoids overflow for large Z.

Everything is built from ``index_add_``/gathers so autograd differentiates w.r.t. input, flow and metric (the
flow gradient flows through the bilinear weights, as in the CuPy backward). On CUDA the order of the additions
is not deterministic, as with the original's ``atomicAdd``.
"""
import torch

from basicsr_multigrid.archs.ops.op_macs import record

MODES = ('summation', 'average', 'linear', 'softmax')


def _corner_weights_and_indices(flow):
    """Targets of every source pixel: four (linear index, bilinear weight) pairs, (B, H*W) each.

    Corners outside the frame get index 0 and weight 0, so they add nothing.
    """
    batch, _, height, width = flow.shape
    ys = torch.arange(height, device=flow.device, dtype=flow.dtype).view(1, -1, 1)
    xs = torch.arange(width, device=flow.device, dtype=flow.dtype).view(1, 1, -1)
    target_x = (xs + flow[:, 0]).reshape(batch, -1)
    target_y = (ys + flow[:, 1]).reshape(batch, -1)
    x0 = torch.floor(target_x.detach())
    y0 = torch.floor(target_y.detach())
    # Bilinear weights written as in the kernel (distances to the opposite corner, no abs), so the flow
    # gradient is the one-sided slope the CuPy backward uses even when a target lands exactly on a pixel.
    right, down = target_x - x0, target_y - y0
    left, up = 1 - right, 1 - down
    corners = []
    for cx, cy, weight in ((x0, y0, left * up), (x0 + 1, y0, right * up),
                           (x0, y0 + 1, left * down), (x0 + 1, y0 + 1, right * down)):
        inside = (cx >= 0) & (cx <= width - 1) & (cy >= 0) & (cy <= height - 1)
        index = torch.where(inside, cy.long() * width + cx.long(), 0)  # integer maths: exact for any size
        corners.append((index, torch.where(inside, weight, torch.zeros_like(weight))))
    return corners


def splat_sum(input, flow):
    """The ``summation`` splat: (B, C, H, W) input pushed along (B, 2, H, W) flow, added at 4 floor neighbours."""
    if flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f'flow must be (B, 2, H, W), got {tuple(flow.shape)}')
    if input.shape[0] != flow.shape[0] or input.shape[2:] != flow.shape[2:]:
        raise ValueError(f'input {tuple(input.shape)} and flow {tuple(flow.shape)} must share batch and size')
    batch, channels, height, width = input.shape
    pixels = height * width
    record('softsplat', 4 * input.numel())
    # One flat (B*H*W, C) table so a single index_add_ per corner scatters every batch element at once.
    source = input.reshape(batch, channels, pixels).transpose(1, 2)          # (B, H*W, C)
    batch_offset = (torch.arange(batch, device=input.device) * pixels).view(-1, 1)
    output = input.new_zeros(batch * pixels, channels)
    for index, weight in _corner_weights_and_indices(flow.to(input.dtype)):
        contribution = (source * weight.unsqueeze(-1)).reshape(batch * pixels, channels)
        output.index_add_(0, (index + batch_offset).reshape(-1), contribution)
    return output.view(batch, height, width, channels).permute(0, 3, 1, 2)


def softsplat(input, flow, metric=None, mode='softmax', subtract_max=False):
    """Forward-warp ``input`` (B, C, H, W) by ``flow`` (B, 2, H, W; channel 0 = x, 1 = y, pixels).

    Args:
        metric: (B, 1, H, W) importance Z; required for 'linear' and 'softmax', ignored otherwise.
        mode: 'summation' | 'average' | 'linear' | 'softmax' (see the module docstring).
        subtract_max: softmax only; subtract the per-image max of Z (detached) before exp to avoid overflow.

    Returns:
        (B, C, H, W) tensor, zero where nothing landed.
    """
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
    if mode == 'summation':
        return splat_sum(input, flow)
    if mode == 'average':
        importance = input.new_ones(input.shape[0], 1, *input.shape[2:])
    else:
        if metric is None or metric.dim() != 4 or metric.shape[1] != 1:
            raise ValueError(f"mode {mode!r} needs a (B, 1, H, W) metric")
        importance = metric
        if mode == 'softmax':
            if subtract_max:
                importance = importance - importance.detach().amax(dim=(1, 2, 3), keepdim=True)
            importance = importance.exp()
    splatted = splat_sum(torch.cat([input * importance, importance], dim=1), flow)
    numerator, normaliser = splatted[:, :-1], splatted[:, -1:]
    normaliser = torch.where(normaliser == 0, torch.ones_like(normaliser), normaliser)  # holes stay 0
    return numerator / normaliser
