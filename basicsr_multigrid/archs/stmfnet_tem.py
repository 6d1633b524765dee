"""ST-MFNet's texture enhancement module (TENet): a 3-D U-Net on an R3D-18 encoder with FLAVR-style SE gating.

It sees the five frames (I0, I1, I~, I2, I3) as a (B, 3, 5, H, W) volume and predicts the residual added to the
fused interpolation I~. No temporal striding anywhere, so the 5 time steps survive to the head, which stacks
them as channels. H and W must be multiples of 8. Attribute names follow the reference ``UNet3d_18`` /
``VideoResNet`` so reference checkpoints load without renaming.
"""
from collections import OrderedDict

import torch
from torch import nn as nn

SPATIAL_STRIDE = (1, 2, 2)


class SEGate3d(nn.Module):
    """Feature gating: x * sigmoid(conv1x1x1(global average of x)) (full-width conv, no reduction)."""

    def __init__(self, channels):
        super().__init__()
        self.attn_layer = nn.Sequential(nn.Conv3d(channels, channels, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.attn_layer(x.mean(dim=(2, 3, 4), keepdim=True))


class BasicBlock3d(nn.Module):
    """R3D basic block: two 3x3x3 convs (no bias) with BN, SE gating, residual (1x1x1 projection if needed)."""

    def __init__(self, in_channels, channels, stride=1):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv3d(in_channels, channels, 3, stride=stride, padding=1, bias=False),
                                   nn.BatchNorm3d(channels), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(nn.Conv3d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm3d(channels))
        self.fg = SEGate3d(channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(nn.Conv3d(in_channels, channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm3d(channels))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.fg(self.conv2(self.conv1(x))) + residual)


class VideoResNetEncoder(nn.Module):
    """R3D-18 (not pretrained): stem conv (3, 7, 7) / (1, 2, 2), then 4 layers of 2 basic blocks with spatial
    strides 1, 2, 2, 1. Returns the stem and the four layer outputs (H/2, H/2, H/4, H/8, H/8)."""

    LAYER_STRIDES = (1, SPATIAL_STRIDE, SPATIAL_STRIDE, 1)

    def __init__(self, channels=(32, 64, 96, 128)):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv3d(3, channels[0], (3, 7, 7), stride=SPATIAL_STRIDE, padding=(1, 3, 3), bias=False),
            nn.BatchNorm3d(channels[0]), nn.ReLU(inplace=True))
        widths = (channels[0], ) + tuple(channels)
        for index, stride in enumerate(self.LAYER_STRIDES):
            layer = nn.Sequential(BasicBlock3d(widths[index], widths[index + 1], stride),
                                  BasicBlock3d(widths[index + 1], widths[index + 1]))
            setattr(self, f'layer{index + 1}', layer)
        self._init_like_torchvision()

    def _init_like_torchvision(self):
        """The reference's VideoResNet init (Kaiming fan-out for the 3-D convs); the decoder keeps the defaults."""
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, mode='fan_out', nonlinearity='relu')
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x):
        features = [self.stem(x)]
        for index in range(1, 5):
            features.append(getattr(self, f'layer{index}')(features[-1]))
        return features


class GatedConv3d(nn.Module):
    """Decoder conv: 3x3x3 conv (with bias) -> SE gate -> BN."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv3d(in_channels, out_channels, 3, padding=1), SEGate3d(out_channels),
                                  nn.BatchNorm3d(out_channels))

    def forward(self, x):
        return self.conv(x)


class GatedUpConv3d(nn.Module):
    """Decoder x2 spatial upsampling: transposed conv (3, 4, 4) / (1, 2, 2) -> SE gate -> BN."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.upconv = nn.Sequential(
            nn.ConvTranspose3d(in_channels, out_channels, (3, 4, 4), stride=SPATIAL_STRIDE, padding=1),
            SEGate3d(out_channels), nn.BatchNorm3d(out_channels))

    def forward(self, x):
        return self.upconv(x)


class TextureEnhancer(nn.Module):
    """3-D U-Net (``UNet3d_18``): encoder, a decoder with concatenation skips, then a 2-D head that stacks the
    five time steps as channels, fuses them with a 1x1 conv + BN to ``fuse_channels`` and predicts RGB with a
    reflect-padded 7x7 conv. The teacher fuses 5*32 -> 32, the student 5*16 -> 8."""

    def __init__(self, channels=(32, 64, 96, 128), fuse_channels=32, frames=5):
        super().__init__()
        c0, c1, c2, c3 = channels
        self.encoder = VideoResNetEncoder(channels)
        self.decoder = nn.Sequential(GatedConv3d(c3, c2), GatedUpConv3d(2 * c2, c1), GatedUpConv3d(2 * c1, c0),
                                     GatedConv3d(2 * c0, c0), GatedUpConv3d(2 * c0, c0))
        self.feature_fuse = nn.Sequential(nn.Conv2d(frames * c0, fuse_channels, 1, bias=False),
                                          nn.BatchNorm2d(fuse_channels))
        self.outconv = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(fuse_channels, 3, 7))
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, frames):
        """(B, 3, T, H, W) volume -> (B, 3, H, W) residual."""
        stem, *layers = self.encoder(frames)
        skips = [layers[2], layers[1], layers[0], stem]  # H/8, H/4, H/2, H/2: each joins a decoder output
        x = layers[3]
        for block, skip in zip(self.decoder, skips):
            x = torch.cat([self.lrelu(block(x)), skip], dim=1)
        x = self.lrelu(self.decoder[-1](x))
        x = torch.cat(torch.unbind(x, dim=2), dim=1)
        return self.outconv(self.lrelu(self.feature_fuse(x)))

    def width_groups(self):
        groups = OrderedDict((f'tem_channels[{i}]', []) for i in range(4))
        groups['tem_channels[0]'].append(('encoder.stem.0.weight', 0))
        for index in range(4):
            for block in (0, 1):
                prefix = f'encoder.layer{index + 1}.{block}'
                names = [f'{prefix}.conv1.0.weight', f'{prefix}.conv2.0.weight', f'{prefix}.fg.attn_layer.0.weight']
                if self.encoder.get_submodule(f'layer{index + 1}.{block}').downsample is not None:
                    names.append(f'{prefix}.downsample.0.weight')
                groups[f'tem_channels[{index}]'] += [(name, 0) for name in names]
        for index, width in enumerate((2, 1, 0, 0, 0)):  # channels[width] produced by decoder[index]
            inner = 'upconv' if isinstance(self.decoder[index], GatedUpConv3d) else 'conv'
            groups[f'tem_channels[{width}]'] += [(f'decoder.{index}.{inner}.0.weight', 1 if inner == 'upconv' else 0),
                                                 (f'decoder.{index}.{inner}.1.attn_layer.0.weight', 0)]
        groups['tem_fuse_channels'] = [('feature_fuse.0.weight', 0)]
        return groups
