"""Dense optical flow by OpenCV's DIS (Kroeger et al., ECCV 2016): a parameter-free motion prior for ST-MFNet.

Why: the reference uses PWC-Net pretrained (FlyingChairs / Sintel) and frozen; nothing here downloads weights, and a
PWC-Net trained from scratch, through the interpolation loss or supervised on synthetic motion, stays at the
zero-motion error for hundreds of CPU iterations (README). DIS needs no training: on the demo validation windows,
splatting both frames halfway along its flows, with nothing trained, reaches 39.8 dB against the frame average's
27.4 dB (`dis_splat` in tools/benchmark_kd.py). Like the
reference's frozen PWC-Net it gets no gradient; it runs on the CPU (frames are copied there and back).
"""
import cv2
import numpy as np
import torch
from torch import nn as nn

PRESETS = {'ultrafast': cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, 'fast': cv2.DISOPTICAL_FLOW_PRESET_FAST,
           'medium': cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


class DISFlow(nn.Module):
    """``forward(first, second)``: (B, 3, H, W) RGB frames in [0, 1] -> (B, 2, H, W) flow first -> second in
    pixels (x, y), first(p) ~ second(p + flow(p)); computed on 8-bit luma, without gradient."""

    def __init__(self, preset='medium'):
        super().__init__()
        if preset not in PRESETS:
            raise ValueError(f'DISFlow: preset must be one of {", ".join(PRESETS)}, got {preset!r}')
        self.preset = preset

    @torch.no_grad()
    def forward(self, first, second):
        # a new estimator per call: OpenCV objects cannot be deep-copied (EMA copies the network)
        estimator = cv2.DISOpticalFlow_create(PRESETS[self.preset])
        flows = [estimator.calc(_luma(a), _luma(b), None) for a, b in zip(first, second)]
        return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).to(device=first.device, dtype=first.dtype)


def _luma(frame):
    rgb = (frame.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
