
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from basicsr_multigrid.data.video_frames import (ClipFrameReader, VideoDataError, clip_to_tensor, list_clip_folders,
                                                  read_video_meta_info)


@DATASET_REGISTRY.register()
class PairedVideoTestDataset(data.Dataset):
    """Whole LQ/GT clips for validation and testing, under any dataset name.

    BasicSR's VideoRecurrentTestDataset accepts only the names vid4 / reds4 / redsofficial. This one
    takes any folder tree `<root>/<clip>/<frame>.png` (or LMDB with `meta_info_file`), one item per clip:
    `{'lq': (t,c,h,w), 'gt': (t,c,H,W), 'folder': clip, 'lq_path': first LQ frame}`.

    Options: name, dataroot_gt, dataroot_lq, optional meta_info_file (else every sub-folder is a clip),
    io_backend {type: disk | lmdb}, cache_data (default False: read each clip when asked),
    filename_tmpl (default '08d'), filename_ext (default 'png').
    """

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        backend = opt.get('io_backend', {}).get('type', 'disk')
        naming = dict(filename_tmpl=opt.get('filename_tmpl', '08d'), filename_ext=opt.get('filename_ext', 'png'))
        key = f"datasets.{opt.get('phase', 'val')}"
        self.gt_reader = ClipFrameReader(opt['dataroot_gt'], backend, f'{key}.dataroot_gt', **naming)
        self.lq_reader = ClipFrameReader(opt['dataroot_lq'], backend, f'{key}.dataroot_lq', **naming)
        if opt.get('meta_info_file'):
            self.clips = read_video_meta_info(opt['meta_info_file'])
        elif backend == 'lmdb':
            raise VideoDataError(f'{key}.meta_info_file: required with io_backend lmdb')
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
        return len(self.clips)

    def __getitem__(self, index):
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
