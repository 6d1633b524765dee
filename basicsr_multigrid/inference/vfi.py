"""Frame interpolation of a frame stream with a 4-frame network (STMFNet, STMFNetMini): the middle of every pair
of neighbours, from the pair and one frame on either side; the first and the last pair repeat the video's first and
last frame as the missing outside neighbour (edge replication). `factor` 2, 4 or 8 doubles the frame rate once,
twice or three times, each pass on the previous pass's frames (n frames -> factor * (n - 1) + 1). Frames stream
through: a pass holds four frames.
"""
import numpy as np
import torch

from basicsr_multigrid.inference.networks import InferenceNetwork
from basicsr_multigrid.inference.vsr import to_uint8
from basicsr_multigrid.utils.errors import OptionError

FACTORS = (2, 4, 8)


class FrameInterpolator:
    def __init__(self, network, device, precision='fp32', factor=2):
        if factor not in FACTORS:
            raise OptionError(f'--factor: {factor!r} is not one of {", ".join(map(str, FACTORS))}')
        self.network = InferenceNetwork(network, device, precision)
        self.factor = factor

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

    def _middle(self, *frames):
        return self.network(torch.stack(frames)[None])[0]  # in: 1, 4, C, H, W
