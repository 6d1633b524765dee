"""Laplacian-pyramid L1 loss of ST-MFNet / ST-MFNet Mini (``losses/laplacianpyramid.py`` in both repos).

Pyramid (Burt & Adelson), ``max_levels`` bands, finest first. With ``G`` the depthwise 5x5 binomial blur
``[1, 4, 6, 4, 1]^T [1, 4, 6, 4, 1] / 256`` on a reflect-padded (2 px) image, repeat ``max_levels - 1`` times::

    reduced  = avg_pool2x2(G(current))
    expanded = 4 * G(zero_insert_x2(reduced))      # reduced at even (row, col), zeros elsewhere
    band     = current - expanded;  current = reduced

and keep the last ``current`` (low-pass, 1/2^(max_levels-1) resolution) as the final level. The loss is
``sum_i 2^i * |L_i(pred) - L_i(target)|_1`` (weights 1, 2, 4, 8, 16 from finest to coarsest).

Reduction: the reference sums every absolute difference (``reduction='sum'`` reproduces it exactly);
``reduction='mean'`` divides that same total by ``pred.numel()``, so the relative weighting of the levels, and
thus the gradient direction, is unchanged and only the scale (and its dependence on batch/crop size) differs.
"""
import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn as nn
from torch.nn import functional as F

_REDUCTIONS = ('mean', 'sum')


def binomial_kernel_5x5():
    """The 5x5 binomial (Gaussian-like) kernel of the reference, normalised to sum 1."""
    taps = torch.tensor([1., 4., 6., 4., 1.], dtype=torch.float64)
    return (taps[:, None] * taps[None, :]) / 256.


@LOSS_REGISTRY.register()
class LaplacianPyramidLoss(nn.Module):
    """Weighted L1 between the Laplacian pyramids of ``pred`` and ``target``: (B, channels, H, W) frames, or
    (B, T, channels, H, W) clips (VSR), whose frames are compared one by one.

    Args:
        max_levels: number of pyramid levels (reference: 5). H and W must be divisible by 2^(max_levels-1)
            and every blurred level must be at least 3 px (reflect padding), e.g. >= 32 px for 5 levels.
        channels: number of image channels; the blur is depthwise.
        loss_weight: multiplier of the final loss.
        reduction: 'sum' (the reference) or 'mean' (the same total divided by ``pred.numel()``).
    """

    def __init__(self, max_levels=5, channels=3, loss_weight=1.0, reduction='mean'):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f'Unsupported reduction mode: {reduction}. Supported ones are: {_REDUCTIONS}')
        if max_levels < 1:
            raise ValueError(f'max_levels must be >= 1, got {max_levels}')
        self.max_levels = max_levels
        self.channels = channels
        self.loss_weight = loss_weight
        self.reduction = reduction
        # A fixed filter: a buffer, so it follows .to()/.cuda() but is neither trained nor counted as a
        # parameter, and non-persistent, so it never enters checkpoints.
        kernel = binomial_kernel_5x5().float().expand(channels, 1, 5, 5).contiguous()
        self.register_buffer('kernel', kernel, persistent=False)

    def blur(self, x, gain=1.0):
        kernel = self.kernel.to(dtype=x.dtype) * gain
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode='reflect'), kernel, groups=self.channels)

    def expand(self, x):
        """x2 upsampling: zero insertion (values at even rows/cols) then the blur with 4x gain."""
        batch, channels, height, width = x.shape
        upsampled = x.new_zeros(batch, channels, 2 * height, 2 * width)
        upsampled[:, :, ::2, ::2] = x
        return self.blur(upsampled, gain=4.0)

    def pyramid(self, x):
        """List of ``max_levels`` tensors: band-pass levels finest first, then the low-pass residual."""
        levels, current = [], x
        for _ in range(self.max_levels - 1):
            reduced = F.avg_pool2d(self.blur(current), 2)
            levels.append(current - self.expand(reduced))
            current = reduced
        levels.append(current)
        return levels

    def _check(self, pred, target):
        if pred.shape != target.shape:
            raise ValueError(f'pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape')
        if pred.dim() not in (4, 5) or pred.shape[-3] != self.channels:
            raise ValueError(f'expected (B, {self.channels}, H, W) or (B, T, {self.channels}, H, W) inputs, '
                             f'got {tuple(pred.shape)}')
        factor = 2 ** (self.max_levels - 1)
        height, width = pred.shape[-2:]
        if height % factor or width % factor:
            raise ValueError(f'H and W must be divisible by {factor} for {self.max_levels} levels, '
                             f'got {height}x{width}')
        if self.max_levels > 1 and min(height, width) // (factor // 2) < 3:
            raise ValueError(f'{height}x{width} is too small for {self.max_levels} levels: the coarsest blurred level '
                             f'must be at least 3 px for the 2-px reflect padding')

    def forward(self, pred, target):
        self._check(pred, target)
        pred, target = pred.flatten(0, -4), target.flatten(0, -4)  # clips: every frame is an image
        total = sum((2 ** level) * (a - b).abs().sum()
                    for level, (a, b) in enumerate(zip(self.pyramid(pred), self.pyramid(target))))
        if self.reduction == 'mean':
            total = total / pred.numel()
        return self.loss_weight * total
