import random

import numpy as np
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from basicsr_multigrid.data.multigrid_paired_video_dataset import reject_unknown_options
from basicsr_multigrid.data.vfi_tuples import TUPLE_OPTIONS, first_frame_shape, read_sample, vfi_samples
from basicsr_multigrid.data.video_frames import VideoDataError, clip_to_tensor
from basicsr_multigrid.utils.errors import OptionError

OWN_OPTIONS = TUPLE_OPTIONS + ('gt_size', 'use_hflip', 'use_vflip', 'use_reverse', 'scale')


@DATASET_REGISTRY.register()
class VFITupleDataset(data.Dataset):
    """Frame-interpolation training samples: 4 input frames and the target between the middle two, as ST-MFNet
    trains (Vimeo-90K septuplets 1, 3, 5, 7 -> 4; quintuplet folders or LMDBs; windows of video clips).

    Options (`datasets.train`), layouts in `basicsr_multigrid/data/vfi_tuples.py`:
        layout: vimeo_septuplet | quintuplet | video | ucf101 | snufilm; dataroot; io_backend {type: disk | lmdb}.
        split (vimeo_septuplet on disk, default train); meta_info_file (see the layouts).
        video layout: frame_gap (default 2, even), window_stride (default 1), filename_tmpl (default 08d),
            filename_ext (default png), first_frame (default 0).
        gt_size (default 256): random square crop, the same for all five frames; null keeps whole frames.
        use_hflip, use_vflip (default True): flips with p 0.5 each, the same for all frames.
        use_reverse (default True): with p 0.5 the inputs come in reverse order (I3, I2, I1, I0); the target
            stays (it is the midpoint either way).
        scale: ignored (BasicSR copies the top-level scale into every dataset).

    Item: {'lq': (4, 3, gt_size, gt_size) float32 in [0, 1], 'gt': (3, gt_size, gt_size), 'lq_path': sample name,
    'key': sample name}. Random draws (crop top, crop left, hflip, vflip, reverse, in that order) come from the
    item's own seed when the index is a `ShapedIndex` from the scheduled sampler (training: a resumed run reads
    exactly what an uninterrupted one reads; its crop size is the schedule's, so training needs an integer
    gt_size), else from Python's `random`, which BasicSR seeds per worker.
    """
    one_target_frame = True  # items give one (C, H, W) target frame, not a clip
    accepts_shaped_indices = True  # read by the multigrid loader factory

    @classmethod
    def schedule_clips(cls, opt):
        """Nothing limits a schedule's clip lengths here (an item is always 4 + 1 frames); crops are checked
        when the dataset is built."""
        return None

    def __init__(self, opt):
        super().__init__()
        reject_unknown_options(opt, OWN_OPTIONS, 'VFITupleDataset')
        self.opt = opt
        prefix = f"datasets.{opt.get('phase', 'train')}"
        self.samples = vfi_samples(opt, default_split='train', default_stride=1)
        self.gt_size = opt.get('gt_size', 256)
        if self.gt_size is not None and (isinstance(self.gt_size, bool) or not isinstance(self.gt_size, int)
                                         or self.gt_size < 1):
            raise OptionError(f'{prefix}.gt_size: must be an integer >= 1 or null, got {self.gt_size!r}')
        self.use_hflip = opt.get('use_hflip', True)
        self.use_vflip = opt.get('use_vflip', True)
        self.use_reverse = opt.get('use_reverse', True)
        if self.gt_size is not None:
            known = [s for s in self.samples if s.shape is not None] or self.samples[:1]
            smallest = min(known, key=lambda s: min(first_frame_shape(s)))
            self._check_crop(smallest, first_frame_shape(smallest), self.gt_size)

    def _check_crop(self, sample, shape, gt_size):
        if gt_size > min(shape):
            raise VideoDataError(f"datasets.{self.opt.get('phase', 'train')}.gt_size: crop {gt_size} is larger "
                                 f'than the frames of sample {sample.name} ({shape[0]}x{shape[1]})')

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        if isinstance(index, tuple):  # ShapedIndex(index, num_frame, gt_size, seed); num_frame has no meaning here
            index, _, gt_size, seed = index
            rng = random.Random(seed)
        else:
            gt_size, rng = self.gt_size, random
        sample = self.samples[index]
        inputs, target = read_sample(sample)
        frames = np.concatenate([inputs, target[None]])  # (5, h, w, 3): I0, I1, I2, I3, target
        if gt_size is not None:
            height, width = frames.shape[1:3]
            self._check_crop(sample, (height, width), gt_size)
            top, left = rng.randint(0, height - gt_size), rng.randint(0, width - gt_size)
            frames = frames[:, top:top + gt_size, left:left + gt_size]
        if self.use_hflip and rng.random() < 0.5:
            frames = frames[:, :, ::-1]
        if self.use_vflip and rng.random() < 0.5:
            frames = frames[:, ::-1]
        inputs, target = frames[:4], frames[4]
        if self.use_reverse and rng.random() < 0.5:
            inputs = inputs[::-1]
        return {'lq': clip_to_tensor(inputs), 'gt': clip_to_tensor(target[None])[0], 'lq_path': sample.name,
                'key': sample.name}
