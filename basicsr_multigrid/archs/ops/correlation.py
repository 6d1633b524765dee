"""PWC-Net cost volume (FlowNet-style correlation layer) in pure PyTorch, matching the CuPy correlation of
``pytorch-pwc`` used by ST-MFNet's teacher.

    out[b, n(dy, dx), y, x] = (1 / C) * sum_c first[b, c, y, x] * second[b, c, y + dy, x + dx]

for ``dy, dx`` in ``{-m, -m + s, ..., m}`` (m = ``max_displacement``, s = ``stride``, the displacement step),
``n(dy, dx) = ((dy + m) / s) * D + (dx + m) / s`` with ``D = 2 m / s + 1`` (so ``dx`` varies fastest), 1x1
patches, output stride 1, and ``second`` zero-padded by m (out-of-frame partners contribute 0 but still count
in the 1/C mean). PWC-Net: m = 4, s = 1 -> 81 channels; it applies LeakyReLU(0.1) afterwards (not done here).
"""
import torch
import torch.nn.functional as F

from basicsr_multigrid.archs.ops.op_macs import record


def _displacements(max_displacement, stride):
    if max_displacement < 0 or stride < 1 or max_displacement % stride:
        raise ValueError(f'max_displacement ({max_displacement}) must be a non-negative multiple of stride ({stride})')
    return range(-max_displacement, max_displacement + 1, stride)


def _check_inputs(first, second):
    if first.dim() != 4 or first.shape != second.shape:
        raise ValueError(f'first and second must be equal-shaped (B, C, H, W), got {tuple(first.shape)} and '
                         f'{tuple(second.shape)}')


def correlation(first, second, max_displacement=4, stride=1, method='shift'):
    """Cost volume between two (B, C, H, W) feature maps; returns (B, D*D, H, W), D = 2*max_displacement/stride + 1.

    ``method='shift'`` loops over the D*D displacements of a zero-padded ``second`` (memory ~ one (B, C, H, W)
    product at a time); ``method='unfold'`` builds all shifted windows with ``F.unfold`` at once (D*D times the
    feature memory, fewer kernel launches). Both give the same values and are differentiable w.r.t. both inputs.
    """
    _check_inputs(first, second)
    shifts = _displacements(max_displacement, stride)
    record('correlation', first.numel() * len(shifts) ** 2)
    padded = F.pad(second, [max_displacement] * 4)  # zeros: partners outside the frame contribute 0
    if method == 'shift':
        return _correlation_by_shifts(first, padded, shifts, max_displacement)
    if method == 'unfold':
        return _correlation_by_unfold(first, padded, len(shifts), stride)
    raise ValueError(f"method must be 'shift' or 'unfold', got {method!r}")


def _correlation_by_shifts(first, padded, shifts, max_displacement):
    height, width = first.shape[2:]
    volumes = []
    for dy in shifts:  # dy outer, dx inner: the channel order of the reference
        for dx in shifts:
            top, left = max_displacement + dy, max_displacement + dx
            window = padded[:, :, top:top + height, left:left + width]
            volumes.append((first * window).mean(dim=1))
    return torch.stack(volumes, dim=1)


def _correlation_by_unfold(first, padded, size, stride):
    batch, channels, height, width = first.shape
    # unfold orders each window's taps row-major (ky, kx), the same (dy, dx) order as the reference channels.
    windows = F.unfold(padded, kernel_size=size, dilation=stride).view(batch, channels, size * size, height, width)
    return (first.unsqueeze(2) * windows).mean(dim=1)
