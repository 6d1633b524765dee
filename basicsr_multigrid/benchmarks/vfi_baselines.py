"""Frame interpolation with nothing trained, on the same clips as the networks: the level a trained network must
beat (the frame average) and what the demo family's flow branch starts from (DIS splatting)."""
import statistics

import torch
from basicsr.metrics import calculate_psnr, calculate_ssim
from basicsr.utils import tensor2img

from basicsr_multigrid.archs.dis_flow import DISFlow
from basicsr_multigrid.archs.ops import softsplat
from basicsr_multigrid.data.vfi_test_dataset import VFITestDataset


def frame_average(i1, i2):
    """The plain average of I1 and I2: what a trained network must beat."""
    return (i1 + i2) / 2


def dis_splat_average(i1, i2):
    """Interpolation without learning: I1 and I2 splatted halfway along their DIS flows (bilinear weights summed,
    both frames together), the frame average where nothing lands. What the demo family's flow branch hands its
    GridNet before any training."""
    first, second = i1[None], i2[None]
    flow = DISFlow()
    landed = sum(softsplat(torch.cat([frame, torch.ones_like(frame[:, :1])], dim=1), 0.5 * flow(frame, other),
                           mode='summation') for frame, other in ((first, second), (second, first)))[0]
    weight = landed[3:]
    return torch.where(weight > 1e-3, landed[:3] / weight.clamp(min=1e-3), frame_average(i1, i2))


def baseline_metrics(val_opt, interpolate):
    """PSNR / SSIM on the validation set of `interpolate(I1, I2)`, a method with nothing to train."""
    dataset = VFITestDataset(dict(val_opt, phase='val'))
    psnr, ssim = [], []
    for index in range(len(dataset)):
        item = dataset[index]
        output, target = tensor2img([interpolate(item['lq'][1], item['lq'][2])]), tensor2img([item['gt']])
        psnr.append(calculate_psnr(output, target, crop_border=0))
        ssim.append(calculate_ssim(output, target, crop_border=0))
    return {'psnr': round(float(statistics.mean(psnr)), 4), 'ssim': round(float(statistics.mean(ssim)), 4)}
