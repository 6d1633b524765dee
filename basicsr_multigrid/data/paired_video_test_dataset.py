import os
from functools import partial
from os import path as osp

import numpy as np
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from basicsr_multigrid.data.footage import VIDEO_EXTENSIONS, decode_frames
from basicsr_multigrid.data.video_frames import (FRAME_IMAGE_EXTENSIONS, ClipFrameReader, VideoDataError,
                                                  clip_to_tensor, frame_images, list_clip_folders, read_rgb_image,
                                                  read_video_meta_info)


@DATASET_REGISTRY.register()
class PairedVideoTestDataset(data.Dataset):
    """Whole LQ/GT clips for validation and testing, under any dataset name.

    BasicSR's VideoRecurrentTestDataset accepts only the names vid4 / reds4 / redsofficial. This one
    takes any folder tree `<root>/<clip>/<frame>.png` (or LMDB with `meta_info_file`), one item per clip:
    `{'lq': (t,c,h,w), 'gt': (t,c,H,W), 'folder': clip, 'lq_path': first LQ frame}`.

    Options: name, dataroot_gt, dataroot_lq, optional meta_info_file (else every sub-folder is a clip),
    io_backend {type: disk | lmdb | frame_store} (a frame store lists its own clips), cache_data (default False:
    read each clip when asked), filename_tmpl (default '08d'), filename_ext (default 'png').

    Without `dataroot_gt` (running a model on footage that has no ground truth) items have no 'gt' and
    `dataroot_lq` is a video file (one clip), a folder of frame images (one clip), or a folder of clips, each a
    sub-folder of frame images (any names, in name order) or a video file.
    """

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.has_gt = bool(opt.get('dataroot_gt'))
        if not self.has_gt:
            key = f"datasets.{opt.get('phase', 'val')}.dataroot_lq"
            self.lq_only = lq_only_clips(opt.get('dataroot_lq'), key)
            self.data_info = {'folder': [name for name, _ in self.lq_only]}
            return
        backend = opt.get('io_backend', {}).get('type', 'disk')
        naming = dict(filename_tmpl=opt.get('filename_tmpl', '08d'), filename_ext=opt.get('filename_ext', 'png'))
        key = f"datasets.{opt.get('phase', 'val')}"
        self.gt_reader = ClipFrameReader(opt['dataroot_gt'], backend, f'{key}.dataroot_gt', **naming)
        self.lq_reader = ClipFrameReader(opt['dataroot_lq'], backend, f'{key}.dataroot_lq', **naming)
        if opt.get('meta_info_file'):
            self.clips = read_video_meta_info(opt['meta_info_file'])
        elif backend == 'lmdb':
            raise VideoDataError(f'{key}.meta_info_file: required with io_backend lmdb')
        elif backend == 'frame_store':
            self.clips = self.gt_reader.store.clip_infos()
        else:
            self.clips = list_clip_folders(opt['dataroot_gt'])
        if not self.clips:
            raise VideoDataError(f"{key}.dataroot_gt: no clip folders in {opt['dataroot_gt']}")
        for clip in self.clips:
            self.gt_reader.check_clip(clip.name, clip.num_frames)
            self.lq_reader.check_clip(clip.name, clip.num_frames)
        # BasicSR's video validation sizes its metric table from data_info['folder'] (one entry per frame).
        self.data_info = {'folder': [clip.name for clip in self.clips for _ in range(clip.num_frames)]}
        self.cache = {} if opt.get('cache_data', False) else None

    def __len__(self):
        return len(self.clips) if self.has_gt else len(self.lq_only)

    def __getitem__(self, index):
        if not self.has_gt:
            name, read = self.lq_only[index]
            return {'lq': clip_to_tensor(read()), 'folder': name, 'lq_path': name}
        clip = self.clips[index]
        if self.cache is not None and clip.name in self.cache:
            return dict(self.cache[clip.name])
        frames = range(clip.num_frames)
        item = {
            'lq': clip_to_tensor(self.lq_reader.read_clip(clip.name, frames)),
            'gt': clip_to_tensor(self.gt_reader.read_clip(clip.name, frames)),
            'folder': clip.name,
            'lq_path': self.lq_reader.frame_path(clip.name, 0),
        }
        if self.cache is not None:
            self.cache[clip.name] = item
        return dict(item)


def lq_only_clips(root, option_key):
    """[(clip name, function reading its (t, h, w, 3) float32 RGB frames)] of a video file, a folder of frames, or a
    folder of clips (frame sub-folders or video files), in name order."""
    if not root or not osp.exists(root):
        raise VideoDataError(f'{option_key}: no such file or folder: {root}')
    if osp.isfile(root):
        return [_video_clip(root)]
    entries = sorted(os.listdir(root))
    if any(name.lower().endswith(FRAME_IMAGE_EXTENSIONS) for name in entries):
        return [_frame_folder_clip(root, option_key)]
    clips = [_video_clip(osp.join(root, name)) if name.lower().endswith(VIDEO_EXTENSIONS) else
             _frame_folder_clip(osp.join(root, name), option_key) for name in entries
             if name.lower().endswith(VIDEO_EXTENSIONS) or osp.isdir(osp.join(root, name))]
    if not clips:
        raise VideoDataError(f'{option_key}: no frames, clip folders or videos in {root}')
    return clips


def _video_clip(path):
    return osp.splitext(osp.basename(path))[0], partial(_read_video, path)


def _frame_folder_clip(folder, option_key):
    files = frame_images(folder, option_key)
    return osp.basename(osp.normpath(folder)), partial(_read_frames, files, option_key)


def _read_video(path):
    frames = list(decode_frames(path))
    if not frames:
        raise VideoDataError(f'{path}: no frames decoded')
    return np.stack(frames).astype(np.float32) / 255.


def _read_frames(files, option_key):
    return np.stack([read_rgb_image(file, option_key) for file in files]).astype(np.float32) / 255.
