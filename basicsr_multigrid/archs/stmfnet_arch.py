"""ST-MFNet (Danier, Zhang & Bull, CVPR 2022): spatio-temporal multi-flow video frame interpolation, pure PyTorch.

Interpolates the middle frame between I1 and I2 from four frames (I0, I1, I2, I3):

1. UMSResNeXt features of (I1, I2) -> AdaCoF kernels/offsets for both frames at x1/2, x1 and x2;
2. (``use_flow``) PWC-Net flows I1 <-> I2, softmax-splatted to t = 0.5 (linear motion);
3. a multi-input GridNet fuses the warped frames of the three scales into I~;
4. a 3-D U-Net on (I0, I1, I~, I2, I3) predicts a texture residual R; the output is I~ + R (not clamped).

Parameters: 21,028,700 with the defaults (the fixed Gaussian and 8-tap filters are buffers). Submodule and
parameter names follow the reference (``danier97/ST-MFNet``), so its checkpoints load without renaming.
"""
import math
from collections import OrderedDict

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn as nn
from torch.nn import functional as F

from basicsr_multigrid.utils.channel_units import channel_units
from basicsr_multigrid.archs.ops import adacof, replicate_pad_for_adacof, softsplat
from basicsr_multigrid.archs.ops.fused import call_fused
from basicsr_multigrid.archs.dis_flow import DISFlow
from basicsr_multigrid.archs.pwcnet import FLOW_SCALE, PWCNet, backwarp
from basicsr_multigrid.archs.stmfnet_blocks import (SCALES, HalfPelUpsampler, KernelEstimation, MIMOGridNet, UMSResNeXt,
                                                    blur_downsample, gaussian_kernel, reflect_pad_to, subtract_rgb_mean)
from basicsr_multigrid.archs.stmfnet_tem import TextureEnhancer

NUM_FRAMES = 4
FEATURE_STRIDE = 16  # UMSResNeXt: four stride-2 stages joined by additive skips
FLOW_STRIDE = 64  # PWC-Net: six stride-2 pyramid levels
GRID_ROWS = ('us', 'full', 'ds')  # GridNet rows, finest first: 2H, H, H/2
FLOW_ESTIMATORS = {'pwcnet': PWCNet, 'dis': DISFlow}


class SplatMetric(nn.Module):
    """Softmax-splatting importance Z = s * mean_c |I_a - backwarp(I_b, F_a->b)|, s learnable (init -1), so
    pixels that warp consistently win where several land on the same target."""

    def __init__(self):
        super().__init__()
        self.paramScale = nn.Parameter(-torch.ones(1, 1, 1, 1))

    def forward(self, first, second, flow):
        return self.paramScale * (first - backwarp(second, flow)).abs().mean(dim=1, keepdim=True)


def _check_ints(owner, name, values, count, minimum, even=False):
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    ok = len(values) == count and all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum
                                      and (not even or v % 2 == 0) for v in values)
    if not ok:
        what = 'an integer' if count == 1 else f'{count} integers'
        raise ValueError(f'{owner}: {name} must be {what} >= {minimum}{" and even" if even else ""}, got {values}')
    return tuple(values)


def split_frames(owner, frames):
    """(I0, I1, I2, I3) from one (B, 4, 3, H, W) tensor or four (B, 3, H, W) tensors; ValueError otherwise."""
    usage = f'{owner} takes one (B, 4, 3, H, W) tensor or four (B, 3, H, W) tensors'
    if len(frames) == 1:
        clip = frames[0]
        if not torch.is_tensor(clip) or clip.dim() != 5 or clip.shape[1] != NUM_FRAMES or clip.shape[2] != 3:
            raise ValueError(f'{usage}; got {_describe(clip)}')
        return clip.unbind(dim=1)
    if len(frames) != NUM_FRAMES:
        raise ValueError(f'{usage}; got {len(frames)} frames')
    if not all(torch.is_tensor(f) and f.dim() == 4 and f.shape[1] == 3 for f in frames):
        raise ValueError(f'{usage}; got {", ".join(_describe(f) for f in frames)}')
    if len({tuple(f.shape) for f in frames}) > 1:
        raise ValueError(f'{owner}: the four frames must have the same shape, got '
                         f'{", ".join(_describe(f) for f in frames)}')
    return frames


def _prefixed(prefix, entry):
    if isinstance(entry[0], str):
        return (f'{prefix}.{entry[0]}', entry[1])
    return tuple(tuple((f'{prefix}.{name}', dim) for name, dim in part) for part in entry)


def _describe(value):
    return f'shape {tuple(value.shape)}' if torch.is_tensor(value) else type(value).__name__


@ARCH_REGISTRY.register()
class STMFNet(nn.Module):
    """ST-MFNet; every width is an argument, so narrower (pruned) variants are just other arguments.

    Args:
        feature_channels: UMSResNeXt widths at H/2 .. H/16 (even, >= 32: ResNeXt branches have 32 groups).
        kernel_channels: hidden width of the 18 AdaCoF heads (their input is ``feature_channels[0]``).
        grid_channels: GridNet widths of the rows at 2H, H and H/2.
        tem_channels: 3-D U-Net widths (stem and layer 1, layer 2, layer 3, layer 4).
        tem_fuse_channels: width of the 1x1 conv that fuses the five time steps before the RGB head.
        kernel_size, dilation: AdaCoF kernel (kernel_size**2 taps per pixel, frame and scale).
        use_flow: add the flow + softmax-splatting branch (two more frames into the GridNet's H row).
        flow_estimator: ``pwcnet`` (the reference's PWC-Net; random until a checkpoint is loaded) or ``dis``
            (OpenCV's DIS, parameter-free and untrained: a motion prior for training from scratch; archs/dis_flow.py).
        pad_multiple: frames are reflect-padded at the bottom/right to a multiple of this (reference: 128) and the
            output is cropped back; it must be a multiple of 16 (64 with the PWC-Net).
        fused_ops: without gradients on a CPU (inference, validation), run AdaCoF and softmax splatting compiled
            (``ops/fused.py``: one C++ loop each, ~10x faster, same values within 1e-5) when a C++ compiler is
            found; false keeps the eager ops everywhere.

    ``forward(frames)`` with (B, 4, 3, H, W) frames in [0, 1], or ``forward(i0, i1, i2, i3)``: returns the
    (B, 3, H, W) frame halfway between I1 and I2, in train and eval mode alike (unlike the reference's dict in
    train mode).
    """
    # The widths the constructor accepts, {argument: (minimum, multiple)}, for pruning: UMSResNeXt branches split
    # a feature width in two halves and use 32-group convs, so feature widths must be even and >= 32.
    width_rules = {'feature_channels': (32, 2)}

    def __init__(self,
                 feature_channels=(64, 128, 256, 512),
                 kernel_channels=64,
                 grid_channels=(32, 64, 96),
                 tem_channels=(32, 64, 96, 128),
                 tem_fuse_channels=32,
                 kernel_size=5,
                 dilation=1,
                 use_flow=True,
                 flow_estimator='pwcnet',
                 pad_multiple=128,
                 fused_ops=True):
        super().__init__()
        owner = type(self).__name__
        feature_channels = _check_ints(owner, 'feature_channels', feature_channels, 4, 32, even=True)
        (kernel_channels, ) = _check_ints(owner, 'kernel_channels', kernel_channels, 1, 1)
        grid_channels = _check_ints(owner, 'grid_channels', grid_channels, 3, 1)
        tem_channels = _check_ints(owner, 'tem_channels', tem_channels, 4, 1)
        (tem_fuse_channels, ) = _check_ints(owner, 'tem_fuse_channels', tem_fuse_channels, 1, 1)
        (self.kernel_size, ) = _check_ints(owner, 'kernel_size', kernel_size, 1, 1)
        (self.dilation, ) = _check_ints(owner, 'dilation', dilation, 1, 1)
        self.use_flow = bool(use_flow)
        if flow_estimator not in FLOW_ESTIMATORS:
            raise ValueError(f'{owner}: flow_estimator must be one of {", ".join(FLOW_ESTIMATORS)}, '
                             f'got {flow_estimator!r}')
        self.uses_pwcnet = self.use_flow and flow_estimator == 'pwcnet'
        self.fused_ops = bool(fused_ops)
        self.pad_multiple = self._check_pad_multiple(owner, pad_multiple)

        self.feature_extractor = UMSResNeXt(feature_channels)
        self.get_kernel = KernelEstimation(feature_channels[0], kernel_channels, self.kernel_size)
        # Fixed pre-filters: persistent buffers under the reference's names (parameters with requires_grad=False
        # there), so reference checkpoints load strictly and the parameter count excludes them.
        self.register_buffer('gauss_kernel', gaussian_kernel(5, 0.5).expand(3, 1, 5, 5).clone())
        self.upsampler = HalfPelUpsampler()
        full_row_channels = 12 if self.use_flow else 6  # AdaCoF warps of I1, I2 (+ their softmax splats)
        self.scale_synthesis = MIMOGridNet((6, full_row_channels, 6), grid_channels, out_channels=3, columns=4,
                                           out_row=1)
        if self.use_flow:
            self.flow_estimator = FLOW_ESTIMATORS[flow_estimator]()
            self.metric = SplatMetric()
        self.dyntex_generator = TextureEnhancer(tem_channels, tem_fuse_channels)

    def _check_pad_multiple(self, owner, pad_multiple):
        stride = FLOW_STRIDE if self.uses_pwcnet else FEATURE_STRIDE
        valid = isinstance(pad_multiple, int) and not isinstance(pad_multiple, bool) and pad_multiple > 0
        if not valid or pad_multiple % stride:
            why = 'PWC-Net halves the frame 6 times' if self.uses_pwcnet else 'the feature extractor halves it 4 times'
            raise ValueError(f'{owner}: pad_multiple must be a positive multiple of {stride} ({why}), '
                             f'got {pad_multiple!r}')
        return pad_multiple

    def forward(self, *frames):
        frames = split_frames(type(self).__name__, frames)
        height, width = frames[0].shape[-2:]
        i0, i1, i2, i3 = self._pad(torch.cat(frames, dim=1)).split(3, dim=1)
        fused = self.scale_synthesis(*self._grid_inputs(i1, i2))
        residual = self.dyntex_generator(torch.stack((i0, i1, fused, i2, i3), dim=2))
        return (fused + residual)[..., :height, :width]

    def _pad(self, clip):
        height, width = (math.ceil(size / self.pad_multiple) * self.pad_multiple for size in clip.shape[-2:])
        return reflect_pad_to(clip, height, width)

    def _grid_inputs(self, i1, i2):
        """GridNet rows (2H, H, H/2): AdaCoF-warped I1 and I2 at each scale, plus the two splats at H."""
        features = self.feature_extractor(subtract_rgb_mean(i1), subtract_rgb_mean(i2))
        kernels = self.get_kernel(features)
        images = {'ds': [blur_downsample(i, self.gauss_kernel) for i in (i1, i2)],
                  'full': [i1, i2],
                  'us': [self.upsampler(i) for i in (i1, i2)]}
        rows = {scale: [self._adacof(image, *params) for image, params in zip(images[scale], kernels[scale])]
                for scale in SCALES}
        if self.use_flow:
            rows['full'] += self._splats(i1, i2)
        return [torch.cat(rows[scale], dim=1) for scale in GRID_ROWS]

    def _adacof(self, image, weight, alpha, beta):
        padded = replicate_pad_for_adacof(image, self.kernel_size, self.dilation)
        return self._op(adacof, padded, weight, alpha, beta, dilation=self.dilation)

    def _op(self, function, *tensors, **options):
        return call_fused(function, *tensors, **options) if self.fused_ops else function(*tensors, **options)

    def _splats(self, i1, i2):
        """I1 and I2 forward-warped halfway along the flows I1 -> I2 and I2 -> I1 (linear motion)."""
        splats = []
        for source, target, flow in zip((i1, i2), (i2, i1), self._flows(i1, i2)):
            metric = self.metric(source, target, flow)
            splats.append(self._op(softsplat, source, 0.5 * flow, metric, mode='softmax', subtract_max=True))
        return splats

    def _flows(self, i1, i2):
        """Flows I1 -> I2 and I2 -> I1 at full resolution, in pixels."""
        if not self.uses_pwcnet:
            return self.flow_estimator(i1, i2), self.flow_estimator(i2, i1)
        pyramids = (self.flow_estimator.pyramid(i1), self.flow_estimator.pyramid(i2))
        flows = (FLOW_SCALE * self.flow_estimator.estimate(*pyramids),  # H/4, full-res pixels
                 FLOW_SCALE * self.flow_estimator.estimate(*pyramids[::-1]))
        return tuple(F.interpolate(flow, size=i1.shape[-2:], mode='bilinear', align_corners=False) for flow in flows)

    def unused_parameter_names(self):
        """Parameters that cannot affect the output (GridNet blocks above its output row in the bottom-up half),
        kept for checkpoint compatibility and the reference's parameter count; they never get a gradient (so
        DistributedDataParallel needs ``find_unused_parameters``, as with the reference)."""
        prefixes = tuple(f'scale_synthesis.{p}.' for p in self.scale_synthesis.unused_parameter_prefixes())
        return [name for name, _ in self.named_parameters() if name.startswith(prefixes)]

    def width_groups(self):
        """``{width argument: [entry, ...]}`` for a pruning tool: where the channels of each width come from.

        An entry is a ``(parameter name, output dim)`` pair (dim 0 for conv / linear, 1 for transposed conv) of a
        weight whose output channels are exactly that width, e.g. ``'grid_channels[1]'``; or, where a width is
        made of several layers' outputs side by side (the two UMSResNeXt branches), a tuple of parts, each part
        a tuple of pairs whose channels live together (a branch's conv3 and its shortcut projection). See
        utils/channel_units.py. The PWC-Net has no width arguments and is not listed; the unused GridNet blocks
        (:meth:`unused_parameter_names`) are left out: their channels cannot matter.
        """
        groups = OrderedDict()
        for prefix in ('feature_extractor', 'get_kernel', 'scale_synthesis', 'dyntex_generator'):
            for key, entries in getattr(self, prefix).width_groups().items():
                groups[key] = [_prefixed(prefix, entry) for entry in entries]
        return groups

    def channel_units(self):
        """The tensors deciding each width's channels (weights and biases, or BatchNorm scales and shifts); see
        utils/channel_units."""
        return channel_units(self)
