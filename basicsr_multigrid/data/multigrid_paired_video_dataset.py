import difflib
import logging
import random
from os import path as osp

import numpy as np
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from basicsr_multigrid.data.video_frames import ClipFrameReader, VideoDataError, clip_to_tensor, read_video_meta_info

OWN_OPTIONS = ('dataroot_gt', 'dataroot_lq', 'meta_info_file', 'io_backend', 'num_frame', 'gt_size', 'scale',
               'interval_list', 'random_reverse', 'use_hflip', 'use_rot', 'gt_center_frame_only', 'filename_tmpl',
               'filename_ext', 'on_bad_frame')
BASICSR_LOADER_OPTIONS = ('name', 'type', 'phase', 'num_worker_per_gpu', 'batch_size_per_gpu', 'dataset_enlarge_ratio',
                          'prefetch_mode', 'num_prefetch_queue', 'pin_memory', 'persistent_workers', 'use_shuffle')
BAD_FRAME_POLICIES = ('error', 'skip')
MAX_CONSECUTIVE_SKIPS = 16  # then the data is broken beyond skipping: stop with the last error


@DATASET_REGISTRY.register()
class MultigridPairedVideoDataset(data.Dataset):
    """Paired LQ/GT training clips of any length, cropped at a shape chosen per item.

    An item index is either an int (the shape comes from `gt_size` / `num_frame` in the options, random
    draws from Python's global RNG, as in BasicSR) or a `ShapedIndex(index, num_frame, gt_size, seed)` from
    the multigrid batch sampler: DataLoader workers then build every item at the schedule's shape, with
    draws from its own seed, so items do not depend on worker count, worker state or resumes.

    Options (`datasets.train`):
        dataroot_gt, dataroot_lq: folders `<root>/<clip>/<frame>.png`, LMDBs with keys `clip/frame`, or frame
            stores (tools/create_frame_store.py).
        meta_info_file: lines `clip frame_count (h,w,c)` (GT shape); clips may have any length.
        io_backend: {type: disk | lmdb | frame_store}. A frame store reads only each crop's rows from its memory
            map; items are identical to the disk / LMDB ones for the same index and seed.
        num_frame, gt_size, scale: default shape (scale is copied from the top level by BasicSR).
        interval_list (default [1]): frame strides to draw from; random_reverse (default False).
        use_hflip, use_rot (default True): flips and 90-degree rotations, same for LQ and GT.
        gt_center_frame_only (default False): return only the middle GT frame (b, c, H, W), for sliding-window
            models such as EDVR (BasicSR's EDVRModel).
        filename_tmpl (default '08d'), filename_ext (default 'png').
        on_bad_frame (default error): `error` stops on an unreadable frame or missing LMDB key with a message
            naming clip and frame; `skip` logs that message, trains on the next item instead, and reports the
            count in the item's `skipped` field (the model logs the running total). Never silent.

    Every start frame of every clip is one item (as in BasicSR's REDS dataset); a start too close to
    the end of its clip is redrawn at random so that clips of any length work.
    """
    accepts_shaped_indices = True  # read by the multigrid loader factory

    @classmethod
    def schedule_clips(cls, opt):
        """The training clips (from the meta file) a schedule's shapes must fit; read before the dataset is built."""
        for key in ('dataroot_gt', 'dataroot_lq'):
            if not osp.exists(str(opt.get(key))):
                raise VideoDataError(f'datasets.train.{key}: not found: {opt.get(key)}')
        return read_video_meta_info(opt['meta_info_file'])

    def __init__(self, opt):
        super().__init__()
        reject_unknown_options(opt)
        self.opt = opt
        self.on_bad_frame = opt.get('on_bad_frame', 'error')
        if self.on_bad_frame not in BAD_FRAME_POLICIES:
            raise VideoDataError(f'datasets.train.on_bad_frame: {self.on_bad_frame!r} is not one of '
                                 f'{", ".join(BAD_FRAME_POLICIES)}')
        self.scale = opt['scale']
        self.num_frame = opt['num_frame']
        self.gt_size = opt['gt_size']
        self.interval_list = opt.get('interval_list', [1])
        self.random_reverse = opt.get('random_reverse', False)
        self.use_hflip, self.use_rot = opt.get('use_hflip', True), opt.get('use_rot', True)
        self.gt_center_frame_only = opt.get('gt_center_frame_only', False)
        backend = opt.get('io_backend', {}).get('type', 'disk')
        naming = dict(filename_tmpl=opt.get('filename_tmpl', '08d'), filename_ext=opt.get('filename_ext', 'png'))
        self.gt_reader = ClipFrameReader(opt['dataroot_gt'], backend, 'datasets.train.dataroot_gt', **naming)
        self.lq_reader = ClipFrameReader(opt['dataroot_lq'], backend, 'datasets.train.dataroot_lq', **naming)
        self.clips = read_video_meta_info(opt['meta_info_file'])
        for clip in self.clips:
            try:
                self.gt_reader.check_clip(clip.name, clip.num_frames)
                self.lq_reader.check_clip(clip.name, clip.num_frames)
            except VideoDataError as error:
                if self.on_bad_frame == 'error':
                    raise
                logging.getLogger('basicsr').warning(f'{error}; items reading it will be skipped (on_bad_frame: skip)')
        self.items = [(clip.name, clip.num_frames, start) for clip in self.clips for start in range(clip.num_frames)]
        self.check_shape(self.num_frame, self.gt_size)

    @property
    def shortest_clip(self):
        return min(clip.num_frames for clip in self.clips)

    @property
    def smallest_frame(self):
        """(h, w) of the smallest GT frame listed in the meta file."""
        return min((clip.shape[0], clip.shape[1]) for clip in self.clips)

    def check_shape(self, num_frame, gt_size):
        """One-line errors for shapes the data cannot provide."""
        if gt_size % self.scale:
            raise VideoDataError(f'datasets.train.gt_size: {gt_size} is not divisible by scale {self.scale}')
        if num_frame < 1 or num_frame > self.shortest_clip:
            raise VideoDataError(f'datasets.train.num_frame: {num_frame} frames do not fit the shortest clip '
                                 f'({self.shortest_clip} frames); use 1..{self.shortest_clip}')
        height, width = self.smallest_frame
        if gt_size > min(height, width):
            raise VideoDataError(f'datasets.train.gt_size: crop {gt_size} is larger than the smallest GT frame '
                                 f'{height}x{width}')

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        if isinstance(index, tuple):
            index, num_frame, gt_size, seed = index
            rng = random.Random(seed)
        else:
            num_frame, gt_size, rng = self.num_frame, self.gt_size, random
        for skipped in range(MAX_CONSECUTIVE_SKIPS + 1):
            try:
                item = self._item((index + skipped) % len(self.items), num_frame, gt_size, rng)
            except VideoDataError as error:
                if self.on_bad_frame == 'error' or skipped == MAX_CONSECUTIVE_SKIPS:
                    raise
                logging.getLogger('basicsr').warning(f'skipping a training item (on_bad_frame: skip): {error}')
            else:
                return dict(item, skipped=skipped)

    def _item(self, index, num_frame, gt_size, rng):
        clip, clip_length, start = self.items[index]
        frame_indices = self._frame_indices(clip, clip_length, start, num_frame, rng)
        if self.lq_reader.reads_crops and self.gt_reader.reads_crops:
            lq, gt = self._read_crop(clip, frame_indices, gt_size, rng)
        else:
            lq = self.lq_reader.read_clip(clip, frame_indices)
            gt = self.gt_reader.read_clip(clip, frame_indices)
            lq, gt = self._random_crop(lq, gt, gt_size, clip, rng)
        lq, gt = self._augment(lq, gt, rng)
        gt = clip_to_tensor(gt)
        if self.gt_center_frame_only:
            gt = gt[num_frame // 2]
        return {'lq': clip_to_tensor(lq), 'gt': gt, 'key': f'{clip}/{frame_indices[0]:08d}'}

    def _frame_indices(self, clip, clip_length, start, num_frame, rng=random):
        intervals = [i for i in self.interval_list if (num_frame - 1) * i < clip_length]
        if not intervals:
            raise VideoDataError(f'clip {clip}: {num_frame} frames at intervals {self.interval_list} exceed its '
                                 f'{clip_length} frames')
        interval = rng.choice(intervals)
        last_start = clip_length - 1 - (num_frame - 1) * interval
        if start > last_start:
            start = rng.randint(0, last_start)
        indices = list(range(start, start + num_frame * interval, interval))
        if self.random_reverse and rng.random() < 0.5:
            indices.reverse()
        return indices

    def _random_crop(self, lq, gt, gt_size, clip, rng):
        top, left, lq_size = self._crop_window(lq.shape[1:3], gt.shape[1:3], gt_size, clip, rng)
        lq = lq[:, top:top + lq_size, left:left + lq_size]
        gt_top, gt_left = top * self.scale, left * self.scale
        return lq, gt[:, gt_top:gt_top + gt_size, gt_left:gt_left + gt_size]

    def _read_crop(self, clip, frame_indices, gt_size, rng):
        """The same crop as `_random_crop` (same draws), read from frame stores without reading whole frames."""
        lq_hw, gt_hw = self.lq_reader.frame_shape(clip)[:2], self.gt_reader.frame_shape(clip)[:2]
        top, left, lq_size = self._crop_window(lq_hw, gt_hw, gt_size, clip, rng)
        lq = self.lq_reader.read_clip_crop(clip, frame_indices, top, left, lq_size, lq_size)
        gt = self.gt_reader.read_clip_crop(clip, frame_indices, top * self.scale, left * self.scale, gt_size, gt_size)
        return lq, gt

    def _crop_window(self, lq_hw, gt_hw, gt_size, clip, rng):
        """(top, left, size) of the LQ crop, drawn from `rng`; one-line errors for frames that cannot give it."""
        lq_size = gt_size // self.scale
        (lq_h, lq_w), (gt_h, gt_w) = lq_hw, gt_hw
        if gt_h != lq_h * self.scale or gt_w != lq_w * self.scale:
            raise VideoDataError(f'clip {clip}: GT frames {gt_h}x{gt_w} are not {self.scale}x the LQ '
                                 f'frames {lq_h}x{lq_w}')
        if lq_size > min(lq_h, lq_w):
            raise VideoDataError(f'datasets.train.gt_size: crop {gt_size} is larger than clip {clip} '
                                 f'({gt_h}x{gt_w})')
        return rng.randint(0, lq_h - lq_size), rng.randint(0, lq_w - lq_size), lq_size

    def _augment(self, lq, gt, rng):
        """Same flips / transpose for every frame of both clips (arrays are (t, h, w, c))."""
        hflip = self.use_hflip and rng.random() < 0.5
        vflip = self.use_rot and rng.random() < 0.5
        transpose = self.use_rot and rng.random() < 0.5
        return tuple(_flip_transpose(x, hflip, vflip, transpose) for x in (lq, gt))


def reject_unknown_options(opt, own_options=OWN_OPTIONS, owner='MultigridPairedVideoDataset'):
    """One-line error for an option key that neither the dataset `owner` nor BasicSR's loader reads."""
    known = tuple(own_options) + BASICSR_LOADER_OPTIONS
    for key in opt:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f'did you mean {close[0]}?' if close else f'known: {", ".join(own_options)}'
            raise VideoDataError(f"datasets.{opt.get('phase', 'train')}.{key}: unknown option of {owner}; {hint}")


def _flip_transpose(clip, hflip, vflip, transpose):
    if hflip:
        clip = clip[:, :, ::-1]
    if vflip:
        clip = clip[:, ::-1]
    if transpose:
        clip = clip.transpose(0, 2, 1, 3)
    return np.ascontiguousarray(clip)
