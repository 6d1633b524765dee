"""Lay out a downloaded REDS for BasicSR training: regroup val into train, make REDS4, write meta files.

    python tools/prepare_reds.py --root datasets/REDS [--mode symlink|move|copy] [--reds4 datasets/REDS4]

1. val_sharp/000-029 (and val_sharp_bicubic/X4/...) become train_sharp/240-269 (and train_sharp_bicubic/X4/...),
   as BasicSR's regroup_reds_dataset does; `--mode symlink` (default) leaves the download untouched.
2. REDS4 (clips 000, 011, 015, 020) as the test layout the option files read: <reds4>/GT/<clip> and
   <reds4>/sharp_bicubic/<clip>, symlinked to the train clips.
3. meta_info_REDS_train.txt (all clips but REDS4), meta_info_REDS4_val.txt and meta_info_REDSofficial_val.txt in
   --root, with each clip's real frame count and shape.
Rerunning is safe: links already in place are kept; anything else in the way is an error that names it.
Then: python tools/create_lmdb.py reds --root datasets/REDS
"""
import argparse
import os
import shutil
import sys
from os import path as osp

import cv2

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from basicsr_multigrid.data import dataset_layouts as layouts  # noqa: E402
from basicsr_multigrid.data.lmdb_builder import LmdbBuildError  # noqa: E402
from basicsr_multigrid.data.video_frames import meta_info_line  # noqa: E402
from basicsr_multigrid.utils.atomic_io import write_text_atomic  # noqa: E402

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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('--root', required=True, help='REDS root (train_sharp, train_sharp_bicubic/X4, val_sharp ...)')
    parser.add_argument('--mode', default='symlink', choices=('symlink', 'move', 'copy'))
    parser.add_argument('--reds4', help='REDS4 test folder (default: REDS4 next to --root)')
    args = parser.parse_args(argv)
    reds4_root = args.reds4 or osp.join(osp.dirname(osp.abspath(args.root)), 'REDS4')
    try:
        moved = regroup_val(args.root, args.mode)
        make_reds4(args.root, reds4_root)
        written = write_meta_files(args.root)
    except LmdbBuildError as error:
        print(f'prepare_reds: error: {error}', file=sys.stderr)
        return 2
    print(f'{args.root}: {moved} val clip folders regrouped ({args.mode}); REDS4 at {reds4_root}')
    for file, count in written.items():
        print(f'  {file}: {count} clips')
    return 0


if __name__ == '__main__':
    sys.exit(main())
