"""Video super-resolution of a frame stream in bounded memory, for any VSR network of the registry.

Recurrent networks (BasicVSR, IconVSR, BasicVSR++: (1, T, C, h, w) in, (1, T, C, H, W) out) see the video in
chunks of `chunk` frames; consecutive chunks share `overlap` frames, and in the shared frames the output fades
linearly from the earlier chunk to the later one, so no frame is cut off from the propagation on either side and
the seam has no step; a short last chunk reaches back so that it too has `chunk` frames. Sliding-window networks
(`network_g.num_frame`, e.g. EDVR: a window in, its centre frame out) get each frame's window, with the edges
filled as BasicSR's video test sets do (`reflection_circle`; a video shorter than the window repeats its first
and last frames where that would point outside it). With `tile`, every frame is cut into tiles of `tile` LR
pixels that each see `tile_overlap` more pixels of context on every side; only their centres are kept. Inputs are
padded (reflect) to a multiple of 4 and the padding is cut off the output.
"""
from collections import deque

import numpy as np
import torch
import torch.nn.functional as F
from basicsr.data.data_util import generate_frame_indices

from basicsr_multigrid.inference.networks import InferenceNetwork
from basicsr_multigrid.utils.errors import OptionError

PAD_MULTIPLE = 4


class FrameUpscaler:
    """Upscales a stream of RGB uint8 frames; `upscale(frames)` yields the output frames in order."""

    def __init__(self, network, scale, device, precision='fp32', window=None, chunk=None, overlap=0, tile=None,
                 tile_overlap=0):
        _check_positive_or_none('--chunk', chunk)
        _check_positive_or_none('--tile', tile)
        if chunk is not None and not 0 <= overlap < chunk:
            raise OptionError(f'--overlap: must be at least 0 and less than --chunk ({chunk}), got {overlap}')
        if tile_overlap < 0:
            raise OptionError(f'--tile-overlap: must be at least 0, got {tile_overlap}')
        self.network = InferenceNetwork(network, device, precision)
        self.scale, self.window = scale, window
        self.chunk, self.overlap, self.tile, self.tile_overlap = chunk, overlap, tile, tile_overlap

    def upscale(self, frames):
        outputs = self._sliding_window(frames) if self.window else self._recurrent(frames)
        for output in outputs:
            yield to_uint8(output)

    # ----------------------------------------------------------------------------------------- recurrent networks
    def _recurrent(self, frames):
        """Float HR frames: chunk by chunk, the shared frames of two chunks faded from the first to the second. A
        short last chunk reaches back into frames already done, so every chunk has `chunk` frames (IconVSR's
        key-frame padding needs at least 5); their outputs are dropped."""
        frames = iter(frames)
        size = self.chunk or 2**62
        buffer, held, previous = [], [], []
        while True:
            size_before = len(buffer)
            buffer += _take(frames, size - len(buffer))
            ended = len(buffer) < size
            if len(buffer) == size_before:  # nothing new: the last chunk already covered the end
                yield from held
                return
            done = previous[:len(previous) - len(held)]  # inputs before this buffer, already emitted
            reach = done[len(done) - min(size - len(buffer), len(done)):] if ended else []
            outputs = self._run_clip(reach + buffer)[len(reach):]
            for k, earlier in enumerate(held):  # weight of the new chunk grows over the shared frames
                weight = (k + 1) / (len(held) + 1)
                outputs[k] = earlier * (1 - weight) + outputs[k] * weight
            if ended:
                yield from outputs
                return
            keep = self.overlap
            yield from outputs[:len(outputs) - keep]
            held, previous, buffer = outputs[len(outputs) - keep:], buffer, buffer[len(buffer) - keep:]

    def _run_clip(self, frames):
        clip = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div(255)[None]  # 1, T, C, h, w
        output = self._forward_tiled(clip)
        return list(output[0].permute(0, 2, 3, 1).numpy())

    # ------------------------------------------------------------------------------------ sliding-window networks
    def _sliding_window(self, frames):
        """Each frame's window of `self.window` frames (reflection_circle edges), in a stream: a frame is kept
        until no later window needs it."""
        half = self.window // 2
        kept = deque()  # (index, frame)
        count, next_centre, ended = 0, 0, False
        frames = iter(frames)
        while True:
            # reflection_circle pads the start with frames up to centre + 2 * half
            while not ended and count <= next_centre + 2 * half:
                frame = next(frames, None)
                if frame is None:
                    ended = True
                else:
                    kept.append((count, frame))
                    count += 1
            if next_centre >= count:
                return
            # Before the end is known no index reaches past the frames read (count > centre + 2 * half).
            total = count if ended else count + self.window
            indices = generate_frame_indices(next_centre, total, self.window, padding='reflection_circle')
            indices = [min(max(index, 0), total - 1) for index in indices]
            by_index = dict(kept)
            clip = torch.from_numpy(np.stack([by_index[i] for i in indices])).permute(0, 3, 1, 2).float().div(255)
            yield self._forward_tiled(clip[None])[0].permute(1, 2, 0).numpy()
            next_centre += 1
            while kept and kept[0][0] < next_centre - self.window:
                kept.popleft()

    # ------------------------------------------------------------------------------------------------- forward
    def _forward_tiled(self, clip):
        """The network's output for a CPU float clip (1, T, C, h, w), on the CPU, tile by tile with `tile`. The clip
        is padded once (reflect, to a multiple of 4) and every tile is grown to a multiple of 4 inside it, so that
        tiles see what the whole frame would have."""
        h, w = clip.shape[-2:]
        padded = _pad_to_multiple(clip, PAD_MULTIPLE)
        height, width = padded.shape[-2:]
        s = self.scale
        if not self.tile or (height <= self.tile and width <= self.tile):
            return self.network(padded)[..., :h * s, :w * s]
        out = None
        for top in range(0, height, self.tile):
            for left in range(0, width, self.tile):
                bottom, right = min(top + self.tile, height), min(left + self.tile, width)
                y0, y1 = _context(top, bottom, self.tile_overlap, height)
                x0, x1 = _context(left, right, self.tile_overlap, width)
                piece = self.network(padded[..., y0:y1, x0:x1])
                if out is None:
                    out = piece.new_zeros(piece.shape[:-2] + (height * s, width * s))
                out[..., top * s:bottom * s, left * s:right * s] = \
                    piece[..., (top - y0) * s:(bottom - y0) * s, (left - x0) * s:(right - x0) * s]
        return out[..., :h * s, :w * s]


def _pad_to_multiple(clip, multiple):
    h, w = clip.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if not pad_h and not pad_w:
        return clip
    mode = 'reflect' if pad_h < h and pad_w < w else 'replicate'
    flat = F.pad(clip.flatten(0, 1), (0, pad_w, 0, pad_h), mode=mode)
    return flat.view(*clip.shape[:-2], h + pad_h, w + pad_w)


def _context(start, end, overlap, size):
    """[start, end) widened by `overlap` on both sides within [0, size), then to a multiple of PAD_MULTIPLE (size is
    one), growing past the end first."""
    low, high = max(start - overlap, 0), min(end + overlap, size)
    missing = -(high - low) % PAD_MULTIPLE
    grow = min(missing, size - high)
    return low - (missing - grow), high + grow


def to_uint8(frame):
    return (frame * 255.0).round().astype(np.uint8)


def _take(iterator, count):
    items = []
    for item in iterator:
        items.append(item)
        if len(items) == count:
            break
    return items


def _check_positive_or_none(name, value):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(f'{name}: must be a positive integer, got {value!r}')
