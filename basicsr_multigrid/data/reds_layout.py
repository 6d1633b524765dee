"""A downloaded REDS laid out for BasicSR training (tools/prepare_reds.py is its command line): val regrouped into
train as BasicSR's regroup_reds_dataset does, the REDS4 test layout, meta files with each clip's real frame count and
shape. Rerunning is safe: links already in place are kept; anything else in the way is an error that names it."""
import os
import shutil
from os import path as osp

import cv2

from basicsr_multigrid.data import dataset_layouts as layouts
from basicsr_multigrid.data.lmdb_builder import LmdbBuildError
from basicsr_multigrid.data.video_frames import meta_info_line
from basicsr_multigrid.utils.atomic_io import write_text_atomic

PAIRS = (('val_sharp', 'train_sharp'), (osp.join('val_sharp_bicubic', 'X4'), osp.join('train_sharp_bicubic', 'X4')))


def place(source, target, mode):
    """Put `source` at `target` unless the same thing is there already."""
    if osp.lexists(target):
        if osp.realpath(target) == osp.realpath(source) or (mode == 'move' and not osp.exists(source)):
            return
        raise LmdbBuildError(f'{target}: already exists and is not {source}; move it away first')
    if mode == 'symlink':
        os.symlink(osp.abspath(source), target)
    elif mode == 'move':
        shutil.move(source, target)
    else:
        shutil.copytree(source, target)


def regroup_val(root, mode):
    """val_sharp/000-029 (and their bicubic X4) as train_sharp/240-269; how many clip folders were placed."""
    moved = 0
    for val_dir, train_dir in PAIRS:
        val_root = osp.join(root, val_dir)
        if not osp.isdir(val_root):
            continue
        for name in sorted(os.listdir(val_root)):
            if name.isdigit():
                place(osp.join(val_root, name), osp.join(root, train_dir, f'{int(name) + layouts.REDS_VAL_OFFSET:03d}'),
                      mode)
                moved += 1
    return moved


def make_reds4(root, reds4_root):
    """<reds4>/GT/<clip> and <reds4>/sharp_bicubic/<clip> of the REDS4 clips, symlinked to the train clips."""
    for source_dir, target_dir in (('train_sharp', 'GT'), (osp.join('train_sharp_bicubic', 'X4'), 'sharp_bicubic')):
        os.makedirs(osp.join(reds4_root, target_dir), exist_ok=True)
        for clip in layouts.REDS4_CLIPS:
            source = osp.join(root, source_dir, clip)
            if osp.isdir(source):
                place(source, osp.join(reds4_root, target_dir, clip), 'symlink')


def clip_meta_line(folder, name):
    frames = layouts.clip_frames(folder)
    if not frames:
        raise LmdbBuildError(f'{folder}: no frames in this clip folder')
    image = cv2.imread(frames[0], cv2.IMREAD_UNCHANGED)
    if image is None:
        raise LmdbBuildError(f'cannot read image {frames[0]}')
    h, w = image.shape[:2]
    c = image.shape[2] if image.ndim == 3 else 1
    return meta_info_line(name, len(frames), (h, w, c))


def write_meta_files(root):
    """meta_info_<partition>.txt of every REDS partition in `root`: {file: clips}."""
    train_sharp = osp.join(root, 'train_sharp')
    lines = {clip.name: clip_meta_line(osp.join(train_sharp, clip.name), clip.name)
             for clip in layouts.reds_clips(root)}
    written = {}
    for partition, names in layouts.reds_partitions(list(lines)).items():
        if names:
            file = osp.join(root, f'meta_info_{partition}.txt')
            write_text_atomic(file, [lines[name] for name in names])
            written[file] = len(names)
    return written
