"""Pack video datasets into BasicSR LMDBs (keys `clip/{frame:08d}`, PNG values, meta files), resumably.

    python tools/create_lmdb.py reds --root datasets/REDS            # after tools/prepare_reds.py
    python tools/create_lmdb.py vimeo90k --root datasets/vimeo90k [--split train|test]
    python tools/create_lmdb.py folder --input datasets/mine/GT --out datasets/mine/GT.lmdb
    python tools/create_lmdb.py vfi --vimeo datasets/vimeo90k --out datasets/vimeo90k/vfi_train.lmdb
    python tools/create_lmdb.py vfi --input datasets/my_quintuplets --out datasets/my_quintuplets.lmdb
Common options: --workers N (parallel read + encode), --overwrite, --compress-level, --no-progress.

Every LMDB gets BasicSR's `meta_info.txt` (`key.png (h,w,c) level`) and `meta_info_clips.txt` (`clip frames
(h,w,c)`, what `meta_info_file` of the video datasets reads). An interrupted build is completed by rerunning
the same command; an existing output is replaced only with --overwrite, and only once the new one is complete.
"""
import argparse
import os
import shutil
import sys
from os import path as osp

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from basicsr_multigrid.data import dataset_layouts as layouts  # noqa: E402
from basicsr_multigrid.data.lmdb_builder import (CLIP_META, LmdbBuildError, build_lmdb, measure_png_encode,  # noqa: E402
                                                  write_text_atomic)

USAGE_ERROR = 2


def plan_reds(args):
    if osp.isdir(osp.join(args.root, 'val_sharp')) and not osp.isdir(osp.join(args.root, 'train_sharp', '240')):
        print('note: val_sharp is not regrouped into train_sharp; run tools/prepare_reds.py to include clips 240-269',
              file=sys.stderr)
    return [(osp.join(args.root, 'train_sharp_with_val.lmdb'), layouts.reds_clips(args.root)),
            (osp.join(args.root, 'train_sharp_bicubic_with_val.lmdb'), layouts.reds_clips(args.root, lq=True))]


def finish_reds(args, outputs):
    """The REDS partition meta files next to the LMDBs, from the clips actually stored."""
    clip_lines = _read_lines(osp.join(outputs[0], CLIP_META))
    by_name = {line.split()[0]: line for line in clip_lines}
    for partition, names in layouts.reds_partitions(list(by_name)).items():
        if names:
            write_text_atomic(osp.join(args.root, f'meta_info_{partition}.txt'), [by_name[n] for n in names])


def plan_vimeo(args):
    stem = osp.join(args.root, f'vimeo90k_{args.split}')
    return [(f'{stem}_GT_all.lmdb', layouts.vimeo_clips(args.root, args.split)),
            (f'{stem}_LR7frames.lmdb', layouts.vimeo_clips(args.root, args.split, lq=True))]


def finish_vimeo(args, outputs):
    shutil.copyfile(osp.join(outputs[0], CLIP_META), osp.join(args.root, f'meta_info_Vimeo90K_{args.split}_GT.txt'))


def plan_folder(args):
    return [(args.out, layouts.folder_clips(args.input))]


def plan_vfi(args):
    if bool(args.vimeo) == bool(args.input):
        raise LmdbBuildError('vfi: give exactly one of --vimeo ROOT or --input DIR')
    clips = layouts.vfi_clips_from_vimeo(args.vimeo, args.split) if args.vimeo else layouts.vfi_clips_from_folder(args.input)
    return [(args.out, clips)]


def _read_lines(file):
    with open(file) as f:
        return f.readlines()


def parse_args(argv):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--workers', type=int, default=min(2, os.cpu_count() or 1),
                        help='processes reading and encoding frames (default: min(2, cores))')
    common.add_argument('--overwrite', action='store_true', help='replace existing outputs once the new ones are built')
    common.add_argument('--compress-level', type=int, default=1, choices=range(10), metavar='0-9',
                        help='PNG compression level (BasicSR default 1)')
    common.add_argument('--no-progress', action='store_true', help='no progress bar')

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = parser.add_subparsers(dest='dataset', required=True)
    reds = sub.add_parser('reds', parents=[common], help='REDS train_sharp (+val) GT and X4 LQ')
    reds.add_argument('--root', required=True, help='REDS root with train_sharp and train_sharp_bicubic/X4')
    reds.set_defaults(plan=plan_reds, finish=finish_reds)
    vimeo = sub.add_parser('vimeo90k', parents=[common], help='Vimeo-90K septuplets, all 7 frames, GT and LQ')
    vimeo.add_argument('--root', required=True, help='root with vimeo_septuplet and vimeo_septuplet_matlabLRx4')
    vimeo.add_argument('--split', default='train', choices=('train', 'test'))
    vimeo.set_defaults(plan=plan_vimeo, finish=finish_vimeo)
    folder = sub.add_parser('folder', parents=[common], help='any <input>/<clip>/<frame>.png|jpg tree')
    folder.add_argument('--input', required=True)
    folder.add_argument('--out', required=True)
    folder.set_defaults(plan=plan_folder, finish=None)
    vfi = sub.add_parser('vfi', parents=[common], help='frame-interpolation quintuplets (I0, I1, target, I2, I3)')
    vfi.add_argument('--vimeo', help='Vimeo-90K root: septuplet frames 1, 3, 4, 5, 7')
    vfi.add_argument('--split', default='train', choices=('train', 'test'))
    vfi.add_argument('--input', help='folder of tuple folders with exactly five frames each')
    vfi.add_argument('--out', required=True)
    vfi.set_defaults(plan=plan_vfi, finish=None)
    return parser.parse_args(argv)


def report(build, workers, encode_rate):
    print(f'{build.path}: {build.frames} frames, {build.bytes / 2**20:.1f} MiB; wrote {build.written} in '
          f'{build.seconds:.1f} s = {build.images_per_s:.1f} img/s with {workers} worker(s); '
          f'PNG encode alone (1 process, same images): {encode_rate:.1f} img/s; '
          f'ratio {build.images_per_s / encode_rate:.2f}')


def main(argv=None):
    args = parse_args(argv)
    try:
        builds = args.plan(args)
        existing = [out for out, _ in builds if osp.exists(out)]
        if existing and not args.overwrite:
            raise LmdbBuildError(f'{existing[0]}: already exists; pass --overwrite to replace it')
        for out, clips in builds:
            build = build_lmdb(out, clips, workers=args.workers, compress_level=args.compress_level,
                               overwrite=args.overwrite, progress=not args.no_progress)
            frames = [frame for clip in clips for frame in clip.frames]
            report(build, args.workers, measure_png_encode(frames, args.compress_level))
        if args.finish:
            args.finish(args, [out for out, _ in builds])
    except LmdbBuildError as error:
        print(f'create_lmdb: error: {error}', file=sys.stderr)
        return USAGE_ERROR
    return 0


if __name__ == '__main__':
    sys.exit(main())
