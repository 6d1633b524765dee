"""Paired video folders as this package's datasets read them, written so that no reader ever sees half of one.

    <root>/<split>/GT/<clip>/%08d.png      8-bit RGB ground-truth frames
    <root>/<split>/LQ/<clip>/%08d.png      their MATLAB-bicubic 1/scale downscale (data/bicubic.py)
    <root>/meta_info_<split>.txt           "<clip> <frames> (<h>,<w>,<c>)" of the GT frames
    <root>/<marker>.json                   written last: the folder is complete

A folder is built under a temporary sibling name and renamed into place; an existing folder is replaced only
with `overwrite` and only if it holds the same marker (a folder this package built, never arbitrary data).
"""
import os
import shutil
import tempfile
from os import path as osp

import cv2
import numpy as np
from basicsr.metrics import calculate_psnr

from basicsr_multigrid.data.bicubic import bicubic_lq
from basicsr_multigrid.data.video_frames import meta_info_line, read_video_meta_info


def write_png(path, rgb):
    if not cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f'cv2.imwrite failed for {path}')


def write_clip(root, split, clip, frames, scale):
    """Write the 8-bit RGB `frames` of one clip and their LQ frames; returns the clip's meta-info line."""
    gt_dir, lq_dir = osp.join(root, split, 'GT', clip), osp.join(root, split, 'LQ', clip)
    os.makedirs(gt_dir)
    os.makedirs(lq_dir)
    count, shape = 0, None
    for count, gt in enumerate(frames, start=1):
        shape = gt.shape
        # LQ from the 8-bit GT, exactly as REDS/Vimeo LR frames are derived from their GT PNGs.
        write_png(osp.join(gt_dir, f'{count - 1:08d}.png'), gt)
        write_png(osp.join(lq_dir, f'{count - 1:08d}.png'), bicubic_lq(gt, scale))
    return meta_info_line(clip, count, shape)


def build_folder_atomically(out_dir, marker, overwrite, build, what):
    """`build(folder)` into a temporary sibling of `out_dir`, then rename it to `out_dir`; returns what `build`
    returns. FileExistsError (naming `out_dir`) for a non-empty `out_dir` without `overwrite`, or one that is
    not a `what` (no `marker` file) even with it."""
    out_dir = osp.abspath(out_dir)
    replace = False
    if osp.lexists(out_dir):
        if not osp.isdir(out_dir) or osp.islink(out_dir):
            raise FileExistsError(f'{out_dir} exists and is not a directory')
        if os.listdir(out_dir):
            if not overwrite:
                raise FileExistsError(f'{out_dir} exists and is not empty (use --overwrite to replace it)')
            if not osp.isfile(osp.join(out_dir, marker)):
                raise FileExistsError(f'{out_dir} is not a {what} (no {marker}); refusing to replace it, remove it '
                                      'yourself')
            replace = True
    parent, base = osp.split(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{base}.building-', dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; give the final dir normal permissions
    try:
        result = build(tmp)
        if replace:
            old = tempfile.mkdtemp(prefix=f'.{base}.old-', dir=parent)
            os.rename(out_dir, old)  # replaces the empty placeholder dir
            os.rename(tmp, out_dir)
            shutil.rmtree(old)
        else:
            if osp.isdir(out_dir):
                os.rmdir(out_dir)  # empty
            os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def bicubic_upscale_psnr(root, split='val'):
    """Mean PSNR over all frames of ``split`` between GT and cv2 INTER_CUBIC x4 upscale of LQ.

    The usual "bicubic" baseline: RGB, 8-bit, crop_border 0.
    """
    values = []
    for clip, n, (h, w, _) in read_video_meta_info(os.path.join(root, f'meta_info_{split}.txt')):
        for t in range(n):
            name = f'{t:08d}.png'
            gt = cv2.imread(os.path.join(root, split, 'GT', clip, name), cv2.IMREAD_COLOR)
            lq = cv2.imread(os.path.join(root, split, 'LQ', clip, name), cv2.IMREAD_COLOR)
            if gt is None or lq is None:
                raise FileNotFoundError(f'missing frame {clip}/{name} under {root}/{split}')
            up = cv2.resize(lq, (w, h), interpolation=cv2.INTER_CUBIC)
            values.append(calculate_psnr(gt, up, crop_border=0))  # the validation metric; BGR as RGB
    if not values:
        raise ValueError(f'no frames listed in {root}/meta_info_{split}.txt')
    return float(np.mean(values))
