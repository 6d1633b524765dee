"""Where the frames of known dataset trees live, as lists of ClipSource for the LMDB builder and meta files.

REDS        <root>/train_sharp/<clip>/<8 digits>.png, <root>/train_sharp_bicubic/X4/<clip>/...;
            val_sharp/<clip> is regrouped into train_sharp as clips 240-269 (tools/prepare_reds.py).
Vimeo-90K   <root>/vimeo_septuplet/sequences/<a>/<b>/im1..im7.png, LR in vimeo_septuplet_matlabLRx4/sequences,
            clip lists vimeo_septuplet/sep_{train,test}list.txt.
folder      <root>/<clip>/<frame>.{png,jpg,jpeg}, frames in name order, clips of any length and size.
VFI tuples  5 frames (I0, I1, target, I2, I3): Vimeo septuplet frames 1, 3, 4, 5, 7, or <root>/<tuple>/ with
            exactly five frames in name order.
"""
import os
from os import path as osp

from basicsr_multigrid.data.lmdb_builder import ClipSource, LmdbBuildError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')
REDS4_CLIPS = ('000', '011', '015', '020')
REDS_OFFICIAL_VAL_CLIPS = tuple(f'{i:03d}' for i in range(240, 270))
REDS_VAL_OFFSET = 240  # val_sharp/000 becomes train_sharp/240
VIMEO_FRAMES = tuple(f'im{i}.png' for i in range(1, 8))
VIMEO_VFI_FRAMES = ('im1.png', 'im3.png', 'im4.png', 'im5.png', 'im7.png')  # target im4 is tuple frame 2
VFI_TUPLE_LENGTH = 5
VFI_TARGET_INDEX = 2


def _require_dir(folder, what):
    if not osp.isdir(folder):
        raise LmdbBuildError(f'{what}: folder not found: {folder}')


def clip_frames(folder):
    """Image files of one clip folder, in name order."""
    return tuple(osp.join(folder, name) for name in sorted(os.listdir(folder))
                 if name.lower().endswith(IMAGE_EXTENSIONS))


def folder_clips(root):
    """Every sub-folder of `root` is a clip; an empty one is an error naming it."""
    _require_dir(root, 'input')
    clips = []
    for name in sorted(os.listdir(root)):
        folder = osp.join(root, name)
        if osp.isdir(folder):
            frames = clip_frames(folder)
            if not frames:
                raise LmdbBuildError(f'{folder}: no {"/".join(IMAGE_EXTENSIONS)} frames in this clip folder')
            clips.append(ClipSource(name, frames))
    if not clips:
        raise LmdbBuildError(f'{root}: no clip folders (expected <root>/<clip>/<frame>.png)')
    return clips


def reds_clips(root, lq=False):
    folder = osp.join(root, 'train_sharp_bicubic', 'X4') if lq else osp.join(root, 'train_sharp')
    _require_dir(folder, 'REDS ' + ('LQ' if lq else 'GT'))
    return folder_clips(folder)


def reds_partitions(clip_names):
    """The REDS clip lists BasicSR trains and validates on: REDS4, the official val clips, and the rest."""
    held_out = set(REDS4_CLIPS)
    return {
        'REDS_train': [name for name in clip_names if name not in held_out],
        'REDS4_val': [name for name in clip_names if name in held_out],
        'REDSofficial_val': [name for name in clip_names if name in REDS_OFFICIAL_VAL_CLIPS],
    }


def vimeo_clip_names(root, split):
    list_file = osp.join(root, 'vimeo_septuplet', f'sep_{split}list.txt')
    if not osp.isfile(list_file):
        raise LmdbBuildError(f'Vimeo-90K clip list not found: {list_file}')
    with open(list_file) as f:
        names = [line.strip() for line in f if line.strip()]
    if not names:
        raise LmdbBuildError(f'{list_file}: no clips listed')
    return names


def vimeo_clips(root, split='train', lq=False, frames=VIMEO_FRAMES):
    """Septuplets (or the `frames` chosen from them) of the clips in sep_{split}list.txt."""
    sequences = osp.join(root, 'vimeo_septuplet_matlabLRx4' if lq else 'vimeo_septuplet', 'sequences')
    _require_dir(sequences, 'Vimeo-90K ' + ('LQ' if lq else 'GT'))
    return [ClipSource(name, tuple(osp.join(sequences, name, frame) for frame in frames))
            for name in vimeo_clip_names(root, split)]


def vfi_clips_from_vimeo(root, split='train'):
    return vimeo_clips(root, split, frames=VIMEO_VFI_FRAMES)


def vfi_clips_from_folder(root):
    """Tuple folders of exactly five frames (I0, I1, target, I2, I3)."""
    clips = folder_clips(root)
    for clip in clips:
        if len(clip.frames) != VFI_TUPLE_LENGTH:
            raise LmdbBuildError(f'{osp.join(root, clip.name)}: {len(clip.frames)} frames; a frame-interpolation '
                                 f'tuple needs {VFI_TUPLE_LENGTH} (I0, I1, target, I2, I3)')
    return clips
