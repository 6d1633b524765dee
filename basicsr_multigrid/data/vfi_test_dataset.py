from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from basicsr_multigrid.data.multigrid_paired_video_dataset import reject_unknown_options
from basicsr_multigrid.data.vfi_tuples import TUPLE_OPTIONS, read_sample, vfi_samples
from basicsr_multigrid.data.video_frames import VideoDataError, clip_to_tensor
from basicsr_multigrid.utils.errors import OptionError

OWN_OPTIONS = TUPLE_OPTIONS + ('center_crop', 'scale')


@DATASET_REGISTRY.register()
class VFITestDataset(data.Dataset):
    """Frame-interpolation validation and test samples, whole frames, in a fixed order (UCF101, DAVIS90,
    SNU-FILM, VFITex, Vimeo-90K test, quintuplets).

    Options (`datasets.val` / `datasets.test_<n>`), layouts in `basicsr_multigrid/data/vfi_tuples.py`:
        layout: vimeo_septuplet | quintuplet | video | ucf101 | snufilm; dataroot; io_backend {type: disk | lmdb}.
        split (vimeo_septuplet on disk, default test); meta_info_file (see the layouts).
        video layout: frame_gap (default 2, even), window_stride (default 2: DAVIS t = 0, 2, 4, ...),
            filename_tmpl (default 08d), filename_ext (default png), first_frame (default 0).
        center_crop (default null): crop every frame to its centre `center_crop` x `center_crop`.
        scale: ignored (BasicSR copies the top-level scale into every dataset).

    Item: {'lq': (4, 3, H, W) float32 in [0, 1] (I0, I1, I2, I3), 'gt': (3, H, W), 'lq_path': sample name,
    'folder': the sequence of the sample}. `data_info['folder']` lists the folder of every sample, in order,
    for per-sequence means (DAVIS, VFITex: mean per sequence, then over sequences).
    """
    one_target_frame = True  # items give one (C, H, W) target frame, not a clip

    def __init__(self, opt):
        super().__init__()
        reject_unknown_options(opt, OWN_OPTIONS, 'VFITestDataset')
        self.opt = opt
        self.prefix = f"datasets.{opt.get('phase', 'val')}"
        self.center_crop = opt.get('center_crop')
        if self.center_crop is not None and (isinstance(self.center_crop, bool) or
                                             not isinstance(self.center_crop, int) or self.center_crop < 1):
            raise OptionError(f'{self.prefix}.center_crop: must be an integer >= 1 or null, got {self.center_crop!r}')
        self.samples = vfi_samples(opt, default_split='test', default_stride=2)
        self.data_info = {'folder': [sample.folder for sample in self.samples]}

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        sample = self.samples[index]
        inputs, target = read_sample(sample)
        if self.center_crop is not None:
            size = self.center_crop
            height, width = target.shape[:2]
            if size > min(height, width):
                raise VideoDataError(f'{self.prefix}.center_crop: {size} is larger than the frames of sample '
                                     f'{sample.name} ({height}x{width})')
            top, left = (height - size) // 2, (width - size) // 2
            inputs = inputs[:, top:top + size, left:left + size]
            target = target[top:top + size, left:left + size]
        return {'lq': clip_to_tensor(inputs), 'gt': clip_to_tensor(target[None])[0], 'lq_path': sample.name,
                'folder': sample.folder}
