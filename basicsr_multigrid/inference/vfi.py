"""Frame interpolation of a frame stream with a 4-frame network (STMFNet, STMFNetMini): the middle of every pair
of neighbours, from the pair and one frame on either side; the first and the last pair repeat the video's first and
last frame as the missing outside neighbour (edge replication). `factor` 2, 4 or 8 doubles the frame rate once,
twice or three times, each pass on the previous pass's frames (n frames -> factor * (n - 1) + 1). Frames stream
through: a pass holds four frames.
"""
import numpy as np
import torch

from basicsr_multigrid.inference.vsr import PRECISIONS, to_uint8
from basicsr_multigrid.utils.errors import OptionError

FACTORS = (2, 4, 8)


class FrameInterpolator:
    def __init__(self, network, device, precision='fp32', factor=2):
        if factor not in FACTORS:
            raise OptionError(f'--factor: {factor!r} is not one of {", ".join(map(str, FACTORS))}')
        if precision not in PRECISIONS:
            raise OptionError(f'--precision: {precision!r} is not one of {", ".join(PRECISIONS)}')
        if precision == 'fp16' and torch.device(device).type != 'cuda':
            raise OptionError('--precision: fp16 needs a CUDA device; use bf16 or fp32 on CPU')
        self.network = network.eval().to(device)
        self.device, self.dtype, self.factor = torch.device(device), PRECISIONS[precision], factor

    def interpolate(self, frames):
        """RGB uint8 frames in, factor x as many (minus the factor - 1 after the last) out, in order."""
        stream = (torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float().div(255) for frame in frames)
        for _ in range(int(np.log2(self.factor))):
            stream = self._double(stream)
        for frame in stream:
            yield to_uint8(frame.permute(1, 2, 0).numpy())

    def _double(self, frames):
        frames = iter(frames)
        first = next(frames, None)
        if first is None:
            return
        before, left, right = first, first, next(frames, None)
        if right is None:
            yield first
            return
        while True:
            after = next(frames, None)
            yield left
            yield self._middle(before, left, right, right if after is None else after)
            if after is None:
                yield right
                return
            before, left, right = left, right, after

    @torch.no_grad()
    def _middle(self, *frames):
        clip = torch.stack(frames)[None].to(self.device)  # 1, 4, C, H, W
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            output = self.network(clip)
        return output[0].float().clamp_(0, 1).cpu()
