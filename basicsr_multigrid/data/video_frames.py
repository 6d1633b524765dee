"""Reading video clips stored as `<root>/<clip>/<frame>.png` folders, BasicSR LMDBs (keys `clip/frame`) or frame
stores (uncompressed, memory-mapped: data/frame_store.py).

One reader owns paths, keys, decoding and their error messages, so the training and validation
datasets fail the same way: a one-line error naming the clip, frame and file.
"""
import os
import re
from os import path as osp
from typing import NamedTuple

import cv2
import numpy as np

from basicsr_multigrid.data.lmdb_env import shared_lmdb_env
from basicsr_multigrid.utils.errors import OptionError

_META_LINE = re.compile(r'^(?P<clip>\S+)\s+(?P<frames>\d+)\s+\(\s*(?P<h>\d+)\s*,\s*(?P<w>\d+)\s*,\s*(?P<c>\d+)\s*\)\s*$')


class VideoDataError(OptionError):
    """A problem with the data on disk: the message names the file or key."""


FRAME_IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def frame_images(folder, option_key):
    """The image files of a folder of frames (any names), in name order; VideoDataError when it has none."""
    files = [osp.join(folder, name) for name in sorted(os.listdir(folder))
             if name.lower().endswith(FRAME_IMAGE_EXTENSIONS)]
    if not files:
        raise VideoDataError(f'{option_key}: no frame images ({", ".join(FRAME_IMAGE_EXTENSIONS)}) in {folder}')
    return files


def read_rgb_image(file, option_key):
    """An image file as an RGB uint8 array; VideoDataError naming it when it cannot be read."""
    image = cv2.imread(file, cv2.IMREAD_COLOR)
    if image is None:
        raise VideoDataError(f'{option_key}: cannot read image {file}')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class ClipInfo(NamedTuple):
    name: str
    num_frames: int
    shape: tuple  # (h, w, c) of the frames this meta file describes


def read_video_meta_info(meta_file):
    """Parse a video meta-info file: one `clip frame_count (h,w,c)` line per clip."""
    if not osp.isfile(meta_file):
        raise VideoDataError(f'meta_info_file: file not found: {meta_file}')
    clips = []
    with open(meta_file) as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            match = _META_LINE.match(line.strip())
            if match is None:
                raise VideoDataError(f'{meta_file}:{line_no}: expected "clip frame_count (h,w,c)", got {line.strip()!r}')
            shape = (int(match['h']), int(match['w']), int(match['c']))
            clips.append(ClipInfo(match['clip'], int(match['frames']), shape))
    if not clips:
        raise VideoDataError(f'{meta_file}: no clips listed')
    return clips


def meta_info_line(clip, num_frames, shape):
    """The meta-info line of one clip, as `read_video_meta_info` reads it: `clip frame_count (h,w,c)`."""
    h, w, c = shape
    return f'{clip} {num_frames} ({h},{w},{c})\n'


def list_clip_folders(root):
    """Clips of a folder tree without a meta file: every sub-folder, with its frame count."""
    clips = []
    for name in sorted(os.listdir(root)):
        folder = osp.join(root, name)
        if osp.isdir(folder):
            frames = [f for f in os.listdir(folder) if f.lower().endswith(('.png', '.jpg', '.jpeg'))]
            clips.append(ClipInfo(name, len(frames), None))
    return clips


BACKENDS = ('disk', 'lmdb', 'frame_store')


class ClipFrameReader:
    """Reads frame `i` of a clip from one root (a folder tree, an LMDB or a frame store), as float32 RGB in [0, 1].

    Frames are named `{i:<filename_tmpl>}.<ext>` (BasicSR: `%08d.png`); LMDB keys are `clip/{i:08d}`.
    Picklable before first use: the LMDB environment (the frame store's memory map) opens lazily in the process
    that reads. A frame store reads crops without decoding whole frames (`reads_crops`, `read_clip_crop`).
    """

    def __init__(self, root, backend='disk', option_key='dataroot', filename_tmpl='08d', filename_ext='png'):
        self.root, self.backend = root, backend
        self.filename_tmpl, self.filename_ext = filename_tmpl, filename_ext
        if backend not in BACKENDS:
            raise VideoDataError(f'io_backend.type: {backend!r} is not supported; use {", ".join(BACKENDS)}')
        if not osp.isdir(root):
            raise VideoDataError(f'{option_key}: folder not found: {root}')
        self.store = None
        if backend == 'frame_store':
            from basicsr_multigrid.data.frame_store import FrameStore
            self.store = FrameStore(root, option_key)

    @property
    def reads_crops(self):
        """Whether `read_clip_crop` reads only the crop (else the datasets decode whole frames and crop them)."""
        return self.store is not None

    def frame_shape(self, clip):
        """(h, w, c) of the clip's frames, known without reading them (frame stores only)."""
        return self.store.frame_shape(clip)

    def read_clip_crop(self, clip, indices, top, left, height, width):
        """Frames `indices`, rows top:top+height, columns left:left+width, as one (t, height, width, 3) float32 array
        equal to cropping `read_clip`'s frames."""
        return self.store.read_frames(clip, indices, top, left, height, width)

    def frame_name(self, clip, index):
        return f'{clip}/{index:{self.filename_tmpl}}'

    def frame_path(self, clip, index):
        if self.backend != 'disk':
            return f'{self.root}:{self.frame_name(clip, index)}'
        return osp.join(self.root, f'{self.frame_name(clip, index)}.{self.filename_ext}')

    def check_clip(self, clip, num_frames):
        """Fail early, naming the first missing frame, instead of deep inside a DataLoader worker."""
        if self.store is not None:
            return self.store.check_clip(clip, num_frames)
        if self.backend == 'lmdb':
            with shared_lmdb_env(self.root).begin(write=False) as txn:
                for i in range(num_frames):
                    if txn.get(self.frame_name(clip, i).encode()) is None:
                        raise VideoDataError(f'{self.root}: missing LMDB key {self.frame_name(clip, i)}')
            return
        for i in range(num_frames):
            if not osp.isfile(self.frame_path(clip, i)):
                raise VideoDataError(f'missing frame {self.frame_path(clip, i)} (clip {clip} lists {num_frames} frames)')

    def read(self, clip, index):
        if self.store is not None:
            return self.store.read_frames(clip, [index])[0]
        buffer = self._read_bytes(clip, index)
        image = cv2.imdecode(np.frombuffer(buffer, np.uint8), cv2.IMREAD_COLOR) if buffer else None
        if image is None:
            raise VideoDataError(f'cannot decode frame {self.frame_path(clip, index)}')
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.

    def _read_bytes(self, clip, index):
        if self.backend == 'lmdb':
            with shared_lmdb_env(self.root).begin(write=False) as txn:
                value = txn.get(self.frame_name(clip, index).encode())
            if value is None:
                raise VideoDataError(f'{self.root}: missing LMDB key {self.frame_name(clip, index)}')
            return value
        path = self.frame_path(clip, index)
        try:
            with open(path, 'rb') as f:
                return f.read()
        except OSError as error:
            raise VideoDataError(f'cannot read frame {path}: {error.strerror}') from None

    def read_clip(self, clip, indices):
        """Frames as one (t, h, w, 3) float32 array."""
        if self.store is not None:
            return self.store.read_frames(clip, indices)
        return np.stack([self.read(clip, i) for i in indices])


def clip_to_tensor(frames):
    """(t, h, w, c) float array -> (t, c, h, w) contiguous torch tensor."""
    import torch
    return torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))
