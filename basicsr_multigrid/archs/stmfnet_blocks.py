"""2-D building blocks of ST-MFNet (Danier et al., CVPR 2022) and ST-MFNet Mini, in pure PyTorch.

* :class:`UMSResNeXt` - the U-shaped multi-scale ResNeXt feature extractor (``models/feature.py``);
* :class:`KernelEstimation` - the 18 AdaCoF kernel/offset heads (3 scales x 2 frames x weight/alpha/beta);
* :class:`MIMOGridNet` - the multi-input GridNet that fuses the warped frames of the three scales;
* :class:`HalfPelUpsampler` and :func:`blur_downsample` - the fixed x2 / x1/2 pre-filters of the AdaCoF inputs;
* :func:`reflect_pad_to` - the bottom/right padding to a multiple of the network's stride.

Attribute names follow the reference code, so a reference ``state_dict`` loads without renaming. Each block
with a width argument has ``width_groups()``: ``{width argument: [(parameter name, output dim), ...]}`` listing
the conv/linear weights whose output channels are exactly that width (names relative to the block).
"""
from collections import OrderedDict

import torch
from torch import nn as nn
from torch.nn import functional as F

RGB_MEAN = (0.4631, 0.4352, 0.3990)  # subtracted from the feature extractor's input only
HEVC_HALF_PEL_TAPS = (-1, 4, -11, 40, 40, -11, 4, -1)  # / 64: the HEVC luma half-sample filter
RESNEXT_GROUPS = 32
RESNEXT_BASE_WIDTH = 4


def subtract_rgb_mean(frame):
    return frame - frame.new_tensor(RGB_MEAN).view(1, 3, 1, 1)


def _pad_end(x, amount, vertical, mode):
    return F.pad(x, (0, 0, 0, amount) if vertical else (0, amount, 0, 0), mode=mode)


def reflect_pad_to(x, height, width):
    """Reflect-pad (B, C, h, w) at the bottom and right up to (height, width).

    ``F.pad(mode='reflect')`` needs the pad to be smaller than the image, so larger pads reflect repeatedly
    (the periodic mirror extension, identical to one reflect pad whenever that is possible); a 1-pixel axis
    has nothing to mirror and is replicated.
    """
    for vertical, target in ((True, height), (False, width)):
        while x.shape[-2 if vertical else -1] < target:
            size = x.shape[-2 if vertical else -1]
            if size == 1:
                x = _pad_end(x, target - 1, vertical, 'replicate')
            else:
                x = _pad_end(x, min(target - size, size - 1), vertical, 'reflect')
    return x


def gaussian_kernel(size=5, sigma=0.5):
    """Normalised (size, size) Gaussian, centred on the middle tap (the reference's ``gaussian_kernel``)."""
    taps = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    line = torch.exp(-taps ** 2 / (2 * sigma ** 2))
    kernel = line[:, None] * line[None, :]
    return (kernel / kernel.sum()).float()


def blur_downsample(image, kernel):
    """Anti-aliased x1/2: depthwise blur with ``kernel`` (C, 1, k, k) on a reflect-padded image, then bilinear."""
    pad = (kernel.shape[-1] - 1) // 2
    blurred = F.conv2d(F.pad(image, (pad, pad, pad, pad), mode='reflect'), kernel.to(image.dtype),
                       groups=image.shape[1])
    height, width = image.shape[-2:]
    return F.interpolate(blurred, size=(height // 2, width // 2), mode='bilinear', align_corners=False)


def _interleave(even, odd, dim):
    """Merge two equal tensors along ``dim`` (-1 or -2), ``even`` at even and ``odd`` at odd indices."""
    return torch.stack((even, odd), dim=dim).flatten(dim - 1, dim)


class HalfPelUpsampler(nn.Module):
    """x2 upsampling that keeps the original pixels on the even grid and fills the half-pel positions with the
    separable 8-tap HEVC filter: horizontally, vertically, and horizontally on the vertical results (centre)."""

    def __init__(self, channels=3):
        super().__init__()
        taps = torch.tensor(HEVC_HALF_PEL_TAPS, dtype=torch.float32) / 64
        # Persistent buffer under the reference's name (there an nn.Parameter with requires_grad=False), so
        # reference checkpoints load strictly; a buffer is neither trained nor counted as a parameter.
        self.register_buffer('filter', taps.view(1, 1, 1, -1).repeat(channels, 1, 1, 1))

    def _between_columns(self, image):
        """Value halfway between pixel j and j+1, for every j (taps j-3 .. j+4, reflect at the borders)."""
        return F.conv2d(F.pad(image, (3, 4, 0, 0), mode='reflect'), self.filter.to(image.dtype),
                        groups=image.shape[1])

    def _between_rows(self, image):
        return F.conv2d(F.pad(image, (0, 0, 3, 4), mode='reflect'), self.filter.to(image.dtype).transpose(2, 3),
                        groups=image.shape[1])

    def forward(self, image):
        vertical = self._between_rows(image)
        even_rows = _interleave(image, self._between_columns(image), dim=-1)
        odd_rows = _interleave(vertical, self._between_columns(vertical), dim=-1)
        return _interleave(even_rows, odd_rows, dim=-2)


# ------------------------------------------------------------------------------------- feature extractor


class SqueezeExcite(nn.Module):
    """Channel attention: global average -> Linear(c, c/16) -> ReLU -> Linear(c/16, c) -> sigmoid gate."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        hidden = channels // reduction
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels),
                                nn.Sigmoid())

    def forward(self, x):
        gate = self.fc(x.mean(dim=(2, 3)))
        return x * gate[:, :, None, None]


class ResNeXtBranch(nn.Module):
    """ResNeXt bottleneck: 1x1 -> grouped kxk (carries the stride) -> 1x1, BN + ReLU after each, no biases,
    residual with a projection (+BN) when the shape changes. ``down=False`` makes the kxk conv (and the
    projection, kernel 2) transposed, i.e. an x``stride`` upsampling block."""

    def __init__(self, down, in_channels, out_channels, kernel_size, stride):
        super().__init__()
        width = int(out_channels * RESNEXT_BASE_WIDTH / 64) * RESNEXT_GROUPS
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        if down:
            self.conv2 = nn.Conv2d(width, width, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                                   groups=RESNEXT_GROUPS, bias=False)
        else:
            self.conv2 = nn.ConvTranspose2d(width, width, kernel_size, stride=stride,
                                            padding=(kernel_size - stride) // 2, groups=RESNEXT_GROUPS, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            projection = (nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False) if down else
                          nn.ConvTranspose2d(in_channels, out_channels, 2, stride=stride, bias=False))
            self.downsample = nn.Sequential(projection, nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class MultiScaleResNeXtBlock(nn.Module):
    """Two ResNeXt branches (small and large kernel, cout/2 channels each), concatenated, then SE attention."""

    def __init__(self, down, in_channels, out_channels, small_kernel, large_kernel, stride):
        super().__init__()
        self.resnext_small = ResNeXtBranch(down, in_channels, out_channels // 2, small_kernel, stride)
        self.resnext_large = ResNeXtBranch(down, in_channels, out_channels // 2, large_kernel, stride)
        self.attention = SqueezeExcite(out_channels)

    def forward(self, x):
        return self.attention(torch.cat([self.resnext_small(x), self.resnext_large(x)], dim=1))


class UMSResNeXt(nn.Module):
    """U-Net of multi-scale ResNeXt blocks over concat(I1, I2): four stride-2 encoder blocks (H/2 .. H/16), a
    stride-1 bottleneck and three transposed decoder blocks with additive skips; output (B, channels[0], H/2).
    H and W must be multiples of 16."""

    # (small, large) kernel sizes of the reference
    ENCODER_KERNELS = ((3, 7), (3, 7), (3, 5), (3, 5))
    DECODER_KERNELS = {4: (3, 5), 3: (4, 6), 2: (4, 8), 1: (4, 8)}

    def __init__(self, channels=(64, 128, 256, 512), in_channels=6):
        super().__init__()
        self.channels = tuple(channels)
        widths = (in_channels, ) + self.channels
        for level, kernels in enumerate(self.ENCODER_KERNELS, start=1):
            block = MultiScaleResNeXtBlock(True, widths[level - 1], widths[level], *kernels, stride=2)
            setattr(self, f'conv{level}', block)
        self.deconv4 = MultiScaleResNeXtBlock(True, widths[4], widths[4], *self.DECODER_KERNELS[4], stride=1)
        for level in (3, 2, 1):
            block = MultiScaleResNeXtBlock(False, widths[level + 1], widths[level], *self.DECODER_KERNELS[level],
                                           stride=2)
            setattr(self, f'deconv{level}', block)

    def forward(self, first, second):
        conv1 = self.conv1(torch.cat([first, second], dim=1))
        conv2 = self.conv2(conv1)
        conv3 = self.conv3(conv2)
        conv4 = self.conv4(conv3)
        deconv4 = self.deconv4(conv4)
        deconv3 = self.deconv3(deconv4 + conv4)
        deconv2 = self.deconv2(deconv3 + conv3)
        return self.deconv1(deconv2 + conv2)

    def width_groups(self):
        """Each block's channels are its two branches' outputs side by side; a branch channel lives while its
        conv3 row or its shortcut projection row does (an entry of parts, see STMFNet.width_groups)."""
        return OrderedDict((f'feature_channels[{i}]', [tuple(self._branch_layers(f'{block}{i + 1}.{branch}')
                                                             for branch in ('resnext_small', 'resnext_large'))
                                                       for block in ('conv', 'deconv')])
                           for i in range(len(self.channels)))

    def _branch_layers(self, name):
        branch = self.get_submodule(name)
        layers = [(f'{name}.conv3.weight', 0)]
        if branch.downsample is not None:
            projection_dim = 1 if isinstance(branch.downsample[0], nn.ConvTranspose2d) else 0
            layers.append((f'{name}.downsample.0.weight', projection_dim))
        return tuple(layers)


# ------------------------------------------------------------------------------------- AdaCoF kernels

SCALES = ('ds', 'full', 'us')  # x1/2, x1, x2 of the frame; features are at x1/2
_SCALE_SUFFIX = {'ds': '_ds', 'full': '', 'us': '_us'}
_SCALE_UPSAMPLING = {'ds': 1, 'full': 2, 'us': 4}
_HEADS = ('Weight', 'Alpha', 'Beta')  # tap weights (softmax), vertical offsets, horizontal offsets


def _kernel_head(in_channels, hidden, taps, upscale, softmax):
    """conv3-ReLU-conv3-ReLU-conv3 to ``taps`` maps; for x2/x4 then ReLU, bilinear upsampling and conv3."""
    layers = [nn.Conv2d(in_channels, hidden, 3, padding=1), nn.ReLU(),
              nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(),
              nn.Conv2d(hidden, taps, 3, padding=1)]
    if upscale > 1:
        layers += [nn.ReLU(), nn.Upsample(scale_factor=upscale, mode='bilinear', align_corners=True),
                   nn.Conv2d(taps, taps, 3, padding=1)]
    if softmax:
        layers.append(nn.Softmax(dim=1))
    return nn.Sequential(*layers)


class KernelEstimation(nn.Module):
    """Per-pixel AdaCoF parameters for both frames at the three scales, from (B, in_channels, H/2, W/2) features.

    ``forward`` returns ``{scale: [(weight, alpha, beta) of frame 1, (weight, alpha, beta) of frame 2]}`` with
    scale in ('ds', 'full', 'us') at H/2, H and 2H, each tensor (B, kernel_size**2, h, w).
    """

    def __init__(self, in_channels=64, hidden_channels=64, kernel_size=5):
        super().__init__()
        taps = kernel_size ** 2
        for scale in SCALES:
            for frame in (1, 2):
                for head in _HEADS:
                    subnet = _kernel_head(in_channels, hidden_channels, taps, _SCALE_UPSAMPLING[scale],
                                          softmax=head == 'Weight')
                    setattr(self, self._name(head, frame, scale), subnet)

    @staticmethod
    def _name(head, frame, scale):
        return f'module{head}{frame}{_SCALE_SUFFIX[scale]}'

    def forward(self, features):
        return {scale: [tuple(getattr(self, self._name(head, frame, scale))(features) for head in _HEADS)
                        for frame in (1, 2)]
                for scale in SCALES}

    def width_groups(self):
        names = [f'{self._name(head, frame, scale)}.{index}.weight'
                 for scale in SCALES for frame in (1, 2) for head in _HEADS for index in (0, 2)]
        return OrderedDict(kernel_channels=[(name, 0) for name in names])


# ------------------------------------------------------------------------------------- GridNet


class LateralBlock(nn.Module):
    """Pre-activation residual block: PReLU-conv3-PReLU-conv3, plus x (through a conv3 if the width changes)."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.f = nn.Sequential(nn.PReLU(), nn.Conv2d(in_channels, out_channels, 3, padding=1),
                               nn.PReLU(), nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1) if in_channels != out_channels else None

    def forward(self, x):
        shortcut = x if self.conv is None else self.conv(x)
        return self.f(x) + shortcut


class DownSamplingBlock(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.f = nn.Sequential(nn.PReLU(), nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1),
                               nn.PReLU(), nn.Conv2d(out_channels, out_channels, 3, padding=1))

    def forward(self, x):
        return self.f(x)


class UpSamplingBlock(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.f = nn.Sequential(nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False),
                               nn.PReLU(), nn.Conv2d(in_channels, out_channels, 3, padding=1),
                               nn.PReLU(), nn.Conv2d(out_channels, out_channels, 3, padding=1))

    def forward(self, x):
        return self.f(x)


class MIMOGridNet(nn.Module):
    """GridNet over rows of halving resolution (row 0 the finest), one input per row, output from one row.

    The first half of the columns runs top-down (lateral block, plus a down-sampled copy of the row above),
    the second half bottom-up (lateral block, plus an up-sampled copy of the row below); a final lateral block
    maps row ``out_row`` to ``out_channels``.

    Rows above ``out_row`` cannot reach the output in the bottom-up half, so they are not computed there (the
    reference computes and discards them: with out_row 1 that is the 2H row's last two lateral and both up
    blocks). Their parameters are kept, for checkpoint compatibility and the reference's parameter count, but
    get no gradient (:meth:`unused_parameter_prefixes`).
    """

    def __init__(self, in_channels=(6, 12, 6), grid_channels=(32, 64, 96), out_channels=3, columns=4, out_row=1):
        super().__init__()
        if len(in_channels) != len(grid_channels):
            raise ValueError(f'one input width per grid row: got {len(in_channels)} inputs for '
                             f'{len(grid_channels)} rows')
        self.grid_channels = tuple(grid_channels)
        self.columns = columns
        self.out_row = out_row
        rows = len(grid_channels)
        for r in range(rows):
            for c in range(columns):
                setattr(self, f'lateral_{r}_{c}', LateralBlock(in_channels[r] if c == 0 else grid_channels[r],
                                                               grid_channels[r]))
        for r in range(rows - 1):
            for c in range(columns // 2):
                setattr(self, f'down_{r}_{c}', DownSamplingBlock(grid_channels[r], grid_channels[r + 1]))
                setattr(self, f'up_{r}_{c}', UpSamplingBlock(grid_channels[r + 1], grid_channels[r]))
        setattr(self, f'lateral_final_{out_row}', LateralBlock(grid_channels[out_row], out_channels))

    def forward(self, *inputs):
        rows, half = len(self.grid_channels), self.columns // 2
        states = list(inputs)
        for c in range(half):
            for r in range(rows):
                states[r] = getattr(self, f'lateral_{r}_{c}')(states[r])
                if r > 0:
                    states[r] = states[r] + getattr(self, f'down_{r - 1}_{c}')(states[r - 1])
        for c in range(half, self.columns):
            for r in reversed(range(self.out_row, rows)):
                states[r] = getattr(self, f'lateral_{r}_{c}')(states[r])
                if r < rows - 1:
                    states[r] = states[r] + getattr(self, f'up_{r}_{c - half}')(states[r + 1])
        return getattr(self, f'lateral_final_{self.out_row}')(states[self.out_row])

    def unused_parameter_prefixes(self):
        """Blocks whose output never reaches ``out_row`` (bottom-up half, rows above it)."""
        half = self.columns // 2
        return [f'{kind}_{r}_{c - half}' if kind == 'up' else f'{kind}_{r}_{c}'
                for r in range(self.out_row) for c in range(half, self.columns) for kind in ('lateral', 'up')]

    def width_groups(self):
        # The unused blocks are left out: their channels cannot matter to the output.
        skipped = tuple(f'{prefix}.' for prefix in self.unused_parameter_prefixes()) + ('lateral_final',)
        groups = OrderedDict((f'grid_channels[{r}]', []) for r in range(len(self.grid_channels)))
        for name, module in self.named_modules():
            if isinstance(module, nn.Conv2d) and not name.startswith(skipped):
                groups[f'grid_channels[{self._row_written(name)}]'].append((f'{name}.weight', 0))
        return groups

    @staticmethod
    def _row_written(conv_name):
        """Grid row a conv's output belongs to: lateral_r_* -> r, down_r_* -> r + 1, up_r_* -> r."""
        kind, row = conv_name.split('_')[:2]
        return int(row) + (kind == 'down')
