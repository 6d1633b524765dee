"""A frame store: video clips as uncompressed frames in one memory-mapped file, so that a training crop costs what
the crop costs (the pages of its rows), not the decode of every frame it is cut from.

    <store>/frames.bin            every frame of every clip, uint8 (h, w, 3) in BGR order (what cv2.imdecode /
                                  BasicSR's imfrombytes give), clip after clip, frame after frame, no padding
    <store>/meta_info_clips.txt   `clip frame_count (h,w,c)`, as the video datasets' meta_info_file reads it
    <store>/index.json            written last (its presence marks a finished store):
                                  {"format": 1, "data_file": "frames.bin", "dtype": "uint8", "channel_order": "BGR",
                                   "bytes": total, "clips": {clip: {"frames", "height", "width", "channels", "offset"}}}

Datasets select it with `io_backend: {type: frame_store}` and `dataroot_gt` / `dataroot_lq` naming store folders
(by convention `<split>/GT.frames` next to `<split>/GT`). A store is read through one read-only memory map per
process, opened lazily on first read and never carried across a fork (as data/lmdb_env.py does for LMDB): the
dataset pickles without it and every DataLoader worker maps the file itself.

Why one flat file and not LMDB values read through zero-copy buffers: a crop is then plain NumPy slicing of a view
at a known offset (no B-tree lookup per frame, no transaction to keep open while the buffer is used, no map size to
grow while building), one map serves any number of clips (Vimeo-90K has 64k of them: a file per clip would mean
64k maps), the size is exact and known before building, and an LMDB whose values are not PNGs would be misread
by anything expecting BasicSR's LMDB layout.
"""
import json
import mmap
import os
import shutil
import time
from os import path as osp
from typing import NamedTuple, Sequence

import cv2
import numpy as np

from basicsr_multigrid.data.lmdb_builder import ClipSource, png_shape
from basicsr_multigrid.data.video_folder import build_folder_atomically
from basicsr_multigrid.data.video_frames import ClipInfo, VideoDataError, meta_info_line

INDEX = 'index.json'
DATA_FILE = 'frames.bin'
CLIP_META = 'meta_info_clips.txt'
STORE_SUFFIX = '.frames'
FORMAT = 1
CHANNELS = 3


class FrameStoreError(VideoDataError):
    """A problem with a frame store or its sources: one line naming the file or clip."""


# ----------------------------------------------------------------------------------------------------- reading

_MAPS = {}  # realpath of a data file -> np.ndarray (uint8, 1-D) over this process's read-only map of it


def close_maps():
    """Forget this process's maps (a forked child starts so: it maps its stores itself); the next read maps again."""
    _MAPS.clear()


os.register_at_fork(after_in_child=close_maps)


def _mapped(path):
    key = osp.realpath(path)
    array = _MAPS.get(key)
    if array is None:
        with open(path, 'rb') as f:
            array = np.frombuffer(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), np.uint8)
        _MAPS[key] = array
    return array


def open_maps():
    """The data files this process has mapped (tests check that workers map their own)."""
    return sorted(_MAPS)


def read_index(root, option_key='dataroot'):
    """The parsed index of the store `root`, checked against its data file; FrameStoreError naming the file."""
    index_file = osp.join(root, INDEX)
    if not osp.isfile(index_file):
        raise FrameStoreError(f'{option_key}: frame store index not found: {index_file} (build the store with '
                              'tools/create_frame_store.py)')
    try:
        with open(index_file) as f:
            index = json.load(f)
        clips, total = index['clips'], int(index['bytes'])
        if index.get('format') != FORMAT or index.get('dtype') != 'uint8' or not isinstance(clips, dict):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise FrameStoreError(f'{index_file}: not a frame store index (format {FORMAT}); rebuild the store') from None
    data_file = osp.join(root, index.get('data_file', DATA_FILE))
    if not osp.isfile(data_file):
        raise FrameStoreError(f'{option_key}: frame store data not found: {data_file}')
    size = osp.getsize(data_file)
    if size != total:
        raise FrameStoreError(f'{data_file}: {size} bytes but {index_file} lists {total}; rebuild the store')
    return index


class FrameStore:
    """Frames of one store, read as (t, h, w, 3) float32 RGB in [0, 1], whole or cropped, identical to decoding the
    PNGs the store was built from. Picklable: the memory map is opened by the process that reads."""

    def __init__(self, root, option_key='dataroot'):
        self.root = root
        index = read_index(root, option_key)
        self.data_file = osp.join(root, index.get('data_file', DATA_FILE))
        self.clips = index['clips']

    def clip_infos(self):
        return [ClipInfo(name, c['frames'], (c['height'], c['width'], c['channels'])) for name, c in self.clips.items()]

    def _clip(self, clip):
        entry = self.clips.get(clip)
        if entry is None:
            raise FrameStoreError(f'{self.root}: clip {clip} is not in the frame store ({INDEX})')
        return entry

    def check_clip(self, clip, num_frames):
        stored = self._clip(clip)['frames']
        if stored < num_frames:
            raise FrameStoreError(f'{self.root}: clip {clip} has {stored} frames in the frame store, {num_frames} '
                                  'listed')

    def frame_shape(self, clip):
        entry = self._clip(clip)
        return entry['height'], entry['width'], entry['channels']

    def clip_array(self, clip):
        """The clip's uint8 BGR frames (t, h, w, c): a view of the map, nothing read until it is sliced."""
        entry = self._clip(clip)
        shape = (entry['frames'], entry['height'], entry['width'], entry['channels'])
        start = entry['offset']
        return _mapped(self.data_file)[start:start + int(np.prod(shape))].reshape(shape)

    def read_frames(self, clip, indices, top=0, left=0, height=None, width=None):
        """Frames `indices` of `clip`, cropped to rows top:top+height and columns left:left+width (default: all),
        as float32 RGB in [0, 1]: only the crop's rows are touched."""
        frames = self.clip_array(clip)
        bottom = None if height is None else top + height
        right = None if width is None else left + width
        crop = np.stack([frames[i, top:bottom, left:right, ::-1] for i in indices])  # BGR -> RGB, copies the crop
        return crop.astype(np.float32) / 255.


# ----------------------------------------------------------------------------------------------------- building

class StorePlan(NamedTuple):
    out: str
    clips: tuple  # ClipSource
    index: dict
    meta_text: str
    index_text: str

    @property
    def data_bytes(self):
        return self.index['bytes']

    @property
    def total_bytes(self):
        """Every byte the finished store holds: frames, meta file and index."""
        return self.data_bytes + len(self.meta_text.encode()) + len(self.index_text.encode())

    @property
    def frames(self):
        return sum(len(clip.frames) for clip in self.clips)


class StoreReport(NamedTuple):
    path: str
    frames: int
    bytes: int
    seconds: float


def _source_shape(image_path):
    """(h, w) of a source frame: from the PNG header when it is one, else by decoding it."""
    try:
        with open(image_path, 'rb') as f:
            head = f.read(26)
    except OSError as error:
        raise FrameStoreError(f'cannot read frame {image_path}: {error.strerror}') from None
    shape = png_shape(head)
    if shape is None:
        image = cv2.imread(image_path, cv2.IMREAD_COLOR)
        if image is None:
            raise FrameStoreError(f'cannot decode frame {image_path}')
        shape = image.shape
    return shape[0], shape[1]


def plan_frame_store(out, clips: Sequence[ClipSource]):
    """What the store `out` of `clips` will hold, byte for byte, from the frames' headers (nothing decoded)."""
    entries, offset, meta = {}, 0, []
    for clip in clips:
        if not clip.frames:
            raise FrameStoreError(f'clip {clip.name}: no frames')
        if clip.name in entries:
            raise FrameStoreError(f'clip {clip.name} is listed twice')
        shapes = [_source_shape(frame) for frame in clip.frames]
        odd = next((i for i, shape in enumerate(shapes) if shape != shapes[0]), None)
        if odd is not None:
            raise FrameStoreError(f'clip {clip.name}: frame {clip.frames[odd]} is {shapes[odd]}, frame '
                                  f'{clip.frames[0]} is {shapes[0]}; frames of a clip must match')
        height, width = shapes[0]
        entries[clip.name] = {'frames': len(clip.frames), 'height': height, 'width': width, 'channels': CHANNELS,
                              'offset': offset}
        offset += len(clip.frames) * height * width * CHANNELS
        meta.append(meta_info_line(clip.name, len(clip.frames), (height, width, CHANNELS)))
    if not entries:
        raise FrameStoreError(f'{out}: no clips to store')
    index = {'format': FORMAT, 'data_file': DATA_FILE, 'dtype': 'uint8', 'channel_order': 'BGR', 'bytes': offset,
             'clips': entries}
    return StorePlan(osp.normpath(out), tuple(clips), index, ''.join(meta), json.dumps(index, indent=1) + '\n')


def check_can_build(plans: Sequence[StorePlan], overwrite=False):
    """FrameStoreError, before anything is written, when an output exists (without `overwrite`, or when it is not
    a frame store) or the disk lacks room for all of `plans`."""
    for plan in plans:
        if osp.lexists(plan.out) and not (osp.isdir(plan.out) and not os.listdir(plan.out)):
            if not overwrite:
                raise FrameStoreError(f'{plan.out}: already exists; pass --overwrite to replace it')
            if not osp.isfile(osp.join(plan.out, INDEX)):
                raise FrameStoreError(f'{plan.out}: exists and is not a frame store (no {INDEX}); refusing to '
                                      'replace it')
    needed = {}
    for plan in plans:
        device = _existing_ancestor(osp.dirname(osp.abspath(plan.out)))
        needed[device] = needed.get(device, 0) + plan.total_bytes
    for folder, size in needed.items():
        free = shutil.disk_usage(folder).free
        if size > free:
            raise FrameStoreError(f'{folder}: {size / 2**20:.1f} MiB needed for the frame store(s), '
                                  f'{free / 2**20:.1f} MiB free')


def _existing_ancestor(folder):
    while not osp.isdir(folder):
        folder = osp.dirname(folder)
    return folder


def _decode(job):
    """The frame as the datasets decode it (cv2.imdecode, IMREAD_COLOR: 3-channel 8-bit BGR)."""
    image_path, height, width = job
    try:
        with open(image_path, 'rb') as f:
            buffer = f.read()
    except OSError as error:
        raise FrameStoreError(f'cannot read frame {image_path}: {error.strerror}') from None
    image = cv2.imdecode(np.frombuffer(buffer, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise FrameStoreError(f'cannot decode frame {image_path}')
    if image.shape != (height, width, CHANNELS) or image.dtype != np.uint8:
        raise FrameStoreError(f'frame {image_path}: decodes to {image.shape} {image.dtype}, planned from its header '
                              f'as ({height}, {width}, {CHANNELS}) uint8')
    return np.ascontiguousarray(image).tobytes()


def build_frame_store(plan: StorePlan, overwrite=False, workers=1, progress=False):
    """Write the store `plan.out` (in a temporary sibling folder, renamed into place when complete)."""
    check_can_build([plan], overwrite)
    jobs = [(frame, plan.index['clips'][clip.name]['height'], plan.index['clips'][clip.name]['width'])
            for clip in plan.clips for frame in clip.frames]
    start = time.perf_counter()

    def build(folder):
        from tqdm import tqdm
        pool = None
        if workers > 1:
            from multiprocessing import Pool
            pool = Pool(workers)
        try:
            decoded = pool.imap(_decode, jobs, chunksize=2) if pool else map(_decode, jobs)
            with open(osp.join(folder, DATA_FILE), 'wb') as f:
                for data in tqdm(decoded, total=len(jobs), unit='frame', disable=not progress, dynamic_ncols=True):
                    f.write(data)
        finally:
            if pool:
                pool.terminate()
        written = osp.getsize(osp.join(folder, DATA_FILE))
        if written != plan.data_bytes:  # a source changed since it was planned
            raise FrameStoreError(f'{plan.out}: wrote {written} frame bytes, planned {plan.data_bytes}')
        with open(osp.join(folder, CLIP_META), 'w') as f:
            f.write(plan.meta_text)
        with open(osp.join(folder, INDEX), 'w') as f:  # last: marks a finished store
            f.write(plan.index_text)

    try:
        build_folder_atomically(plan.out, INDEX, overwrite, build, 'frame store')
    except FileExistsError as error:
        raise FrameStoreError(str(error)) from None
    size = sum(osp.getsize(osp.join(plan.out, name)) for name in os.listdir(plan.out))
    return StoreReport(plan.out, plan.frames, size, time.perf_counter() - start)


def store_path(folder):
    """The conventional store of a frame folder: `<split>/GT` -> `<split>/GT.frames`."""
    return osp.normpath(folder) + STORE_SUFFIX
