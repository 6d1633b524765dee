"""PWC-Net (Sun et al., CVPR 2018) as re-implemented by Niklaus (``pytorch-pwc``), the flow estimator of the
ST-MFNet teacher, in pure PyTorch on :func:`~basicsr_multigrid.archs.ops.correlation`.

Nothing is downloaded: the weights start random, and loading an ST-MFNet checkpoint (which contains
``flow_estimator.*``) overwrites them. Attribute names follow ``pytorch-pwc`` (``netExtractor``, ``netTwo`` ..
``netSix``, ``netRefiner``) for that reason. Inputs are RGB in [0, 1] with H and W multiples of 64; the flow
comes out at H/4 in units of 1/20 full-resolution pixel (the network was trained on flow / 20).
"""
import torch
from torch import nn as nn
from torch.nn import functional as F

from basicsr_multigrid.archs.ops import correlation

PYRAMID_CHANNELS = (16, 32, 64, 96, 128, 196)  # levels 1 (H/2) .. 6 (H/64)
DENSE_CHANNELS = (128, 128, 96, 64, 32)  # densely connected decoder convs, each output concatenated in front
REFINER_LAYERS = ((128, 1), (128, 2), (128, 4), (96, 8), (64, 16), (32, 1), (2, 1))  # (out channels, dilation)
COST_VOLUME_CHANNELS = 81  # correlation with displacements -4 .. 4 in x and y
LEVEL_NAMES = {1: 'One', 2: 'Two', 3: 'Thr', 4: 'Fou', 5: 'Fiv', 6: 'Six'}
FLOW_SCALE = 20.0


def _lrelu():
    return nn.LeakyReLU(0.1)


def backwarp(image, flow):
    """Backward-warp (B, C, H, W) ``image`` by (B, 2, H, W) ``flow`` (x, y in pixels): out(p) = image(p + flow(p)).

    Bilinear with zeros outside; samples that mix in any outside pixel are zeroed entirely (a warped ones
    channel must stay > 0.999). Niklaus's convention is kept for weight compatibility: the base grid is the
    pixel centres of ``align_corners=False`` but the flow is normalised by (size - 1) / 2.
    """
    batch, _, height, width = flow.shape
    xs = torch.linspace(-1 + 1 / width, 1 - 1 / width, width, device=flow.device, dtype=flow.dtype)
    ys = torch.linspace(-1 + 1 / height, 1 - 1 / height, height, device=flow.device, dtype=flow.dtype)
    grid_x = xs.view(1, 1, width) + flow[:, 0] / ((image.shape[3] - 1) / 2)
    grid_y = ys.view(1, height, 1) + flow[:, 1] / ((image.shape[2] - 1) / 2)
    with_ones = torch.cat([image, image.new_ones(batch, 1, *image.shape[2:])], dim=1)
    sampled = F.grid_sample(with_ones, torch.stack([grid_x, grid_y], dim=-1), mode='bilinear',
                            padding_mode='zeros', align_corners=False)
    valid = (sampled[:, -1:] > 0.999).to(sampled.dtype)  # a constant mask, as in the reference (no gradient)
    return sampled[:, :-1] * valid


class PWCExtractor(nn.Module):
    """Six-level feature pyramid: each level a stride-2 conv3 and two conv3, all followed by LeakyReLU(0.1)."""

    def __init__(self):
        super().__init__()
        widths = (3, ) + PYRAMID_CHANNELS
        for level in range(1, 7):
            cin, cout = widths[level - 1], widths[level]
            setattr(self, f'net{LEVEL_NAMES[level]}', nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride=2, padding=1), _lrelu(),
                nn.Conv2d(cout, cout, 3, padding=1), _lrelu(),
                nn.Conv2d(cout, cout, 3, padding=1), _lrelu()))

    def forward(self, image):
        pyramid = []
        for level in range(1, 7):
            image = getattr(self, f'net{LEVEL_NAMES[level]}')(image)
            pyramid.append(image)
        return pyramid


def _decoder_input_channels(level):
    """Cost volume, plus (below the top level) the first image's features, the upsampled flow and feature."""
    return COST_VOLUME_CHANNELS if level == 6 else COST_VOLUME_CHANNELS + PYRAMID_CHANNELS[level - 1] + 2 + 2


class PWCDecoder(nn.Module):
    """Flow estimator of one pyramid level: cost volume against the second image's features warped by the
    upsampled coarser flow, a DenseNet-style conv stack, and a conv3 predicting this level's flow."""

    def __init__(self, level):
        super().__init__()
        self.level = level
        if level < 6:
            coarser = _decoder_input_channels(level + 1) + sum(DENSE_CHANNELS)
            self.netUpflow = nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1)
            self.netUpfeat = nn.ConvTranspose2d(coarser, 2, 4, stride=2, padding=1)
            # the coarser flow is in 1/20 full-res pixels: this level's pixels are 2**level full-res pixels
            self.backwarp_scale = FLOW_SCALE / 2 ** level
        width = _decoder_input_channels(level)
        for index, out_channels in enumerate(DENSE_CHANNELS, start=1):
            setattr(self, f'net{LEVEL_NAMES[index]}', nn.Sequential(nn.Conv2d(width, out_channels, 3, padding=1),
                                                                    _lrelu()))
            width += out_channels
        self.netSix = nn.Sequential(nn.Conv2d(width, 2, 3, padding=1))

    def forward(self, first, second, coarser=None):
        """Returns (flow, feature) of this level; ``coarser`` is the (flow, feature) of the level above."""
        if coarser is None:
            feature = F.leaky_relu(correlation(first, second), 0.1)
        else:
            flow = self.netUpflow(coarser[0])
            upsampled = self.netUpfeat(coarser[1])
            volume = F.leaky_relu(correlation(first, backwarp(second, flow * self.backwarp_scale)), 0.1)
            feature = torch.cat([volume, first, flow, upsampled], dim=1)
        for index in range(1, len(DENSE_CHANNELS) + 1):
            feature = torch.cat([getattr(self, f'net{LEVEL_NAMES[index]}')(feature), feature], dim=1)
        return self.netSix(feature), feature


class PWCRefiner(nn.Module):
    """Context network: dilated conv3 stack (dilations 1, 2, 4, 8, 16, 1, 1) predicting a flow correction."""

    def __init__(self):
        super().__init__()
        layers, width = [], _decoder_input_channels(2) + sum(DENSE_CHANNELS)
        for out_channels, dilation in REFINER_LAYERS:
            layers += [nn.Conv2d(width, out_channels, 3, padding=dilation, dilation=dilation), _lrelu()]
            width = out_channels
        self.netMain = nn.Sequential(*layers[:-1])  # no activation on the flow

    def forward(self, feature):
        return self.netMain(feature)


class PWCNet(nn.Module):
    """Coarse-to-fine flow from level 6 (H/64) to level 2 (H/4) plus the refiner.

    ``pyramid(image)`` extracts features once so both directions can share them; ``estimate(pyr_a, pyr_b)``
    gives the a -> b flow at H/4 in 1/20 pixels; ``forward(a, b)`` does both.
    """

    def __init__(self):
        super().__init__()
        self.netExtractor = PWCExtractor()
        for level in range(2, 7):
            setattr(self, f'net{LEVEL_NAMES[level]}', PWCDecoder(level))
        self.netRefiner = PWCRefiner()

    def pyramid(self, image):
        return self.netExtractor(image)

    def estimate(self, first_pyramid, second_pyramid):
        estimate = None
        for level in range(6, 1, -1):
            decoder = getattr(self, f'net{LEVEL_NAMES[level]}')
            estimate = decoder(first_pyramid[level - 1], second_pyramid[level - 1], estimate)
        flow, feature = estimate
        return flow + self.netRefiner(feature)

    def forward(self, first, second):
        return self.estimate(self.pyramid(first), self.pyramid(second))
