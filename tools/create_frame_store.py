"""Pack video frames into frame stores: uncompressed, memory-mapped, read a crop at a time (data/frame_store.py).

    python tools/create_frame_store.py video-folder --root datasets/demo [--splits train val test]
        # <root>/<split>/{GT,LQ} -> <root>/<split>/{GT,LQ}.frames (tools/make_demo_data.py, make_video_dataset.py)
    python tools/create_frame_store.py folder --input datasets/mine/GT --out datasets/mine/GT.frames
    python tools/create_frame_store.py reds --root datasets/REDS        # after tools/prepare_reds.py
    python tools/create_frame_store.py vimeo90k --root datasets/vimeo90k [--split train|test]
Common options: --workers N (parallel decode), --overwrite, --no-progress.

Prints the size (GT + LQ bytes) before building; refuses, writing nothing, when an output exists (without
--overwrite) or the disk lacks room. Train on a store with `io_backend: {type: frame_store}` and dataroot_gt /
dataroot_lq naming the store folders; meta_info_file stays the same (each store also has meta_info_clips.txt).
"""
import argparse
import sys
from os import path as osp

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from basicsr_multigrid.data import dataset_layouts as layouts  # noqa: E402
from basicsr_multigrid.data.frame_store import (build_frame_store, check_can_build, plan_frame_store,  # noqa: E402
                                                store_path)
from basicsr_multigrid.utils.errors import OptionError  # noqa: E402

USAGE_ERROR = 2


def plan_video_folder(args):
    outputs = []
    for split in args.splits:
        for side in ('GT', 'LQ'):
            folder = osp.join(args.root, split, side)
            outputs.append((store_path(folder), layouts.folder_clips(folder)))
    return outputs


def plan_folder(args):
    return [(args.out, layouts.folder_clips(args.input))]


def plan_reds(args):
    return [(osp.join(args.root, 'train_sharp_with_val.frames'), layouts.reds_clips(args.root)),
            (osp.join(args.root, 'train_sharp_bicubic_with_val.frames'), layouts.reds_clips(args.root, lq=True))]


def plan_vimeo(args):
    stem = osp.join(args.root, f'vimeo90k_{args.split}')
    return [(f'{stem}_GT_all.frames', layouts.vimeo_clips(args.root, args.split)),
            (f'{stem}_LR7frames.frames', layouts.vimeo_clips(args.root, args.split, lq=True))]


def parse_args(argv):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--workers', type=int, default=1, help='processes decoding frames (default 1)')
    common.add_argument('--overwrite', action='store_true', help='replace existing stores once the new ones are built')
    common.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='dataset', required=True)
    video = sub.add_parser('video-folder', parents=[common], help='<root>/<split>/{GT,LQ}/<clip>/<frame>.png')
    video.add_argument('--root', required=True)
    video.add_argument('--splits', nargs='+', default=['train', 'val', 'test'])
    video.set_defaults(plan=plan_video_folder)
    folder = sub.add_parser('folder', parents=[common], help='any <input>/<clip>/<frame>.png|jpg tree')
    folder.add_argument('--input', required=True)
    folder.add_argument('--out', required=True)
    folder.set_defaults(plan=plan_folder)
    reds = sub.add_parser('reds', parents=[common], help='REDS train_sharp (+val) GT and X4 LQ')
    reds.add_argument('--root', required=True)
    reds.set_defaults(plan=plan_reds)
    vimeo = sub.add_parser('vimeo90k', parents=[common], help='Vimeo-90K septuplets, GT and LQ')
    vimeo.add_argument('--root', required=True)
    vimeo.add_argument('--split', default='train', choices=('train', 'test'))
    vimeo.set_defaults(plan=plan_vimeo)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        plans = [plan_frame_store(out, clips) for out, clips in args.plan(args)]
        total = sum(plan.total_bytes for plan in plans)
        for plan in plans:
            print(f'{plan.out}: {plan.frames} frames, {plan.total_bytes} bytes ({plan.total_bytes / 2**20:.1f} MiB)')
        print(f'total: {total} bytes ({total / 2**30:.2f} GiB)', flush=True)
        check_can_build(plans, args.overwrite)
        for plan in plans:
            report = build_frame_store(plan, overwrite=args.overwrite, workers=args.workers,
                                       progress=not args.no_progress)
            print(f'{report.path}: {report.frames} frames, {report.bytes} bytes in {report.seconds:.1f} s')
    except OptionError as error:
        print(f'create_frame_store: error: {error}', file=sys.stderr)
        return USAGE_ERROR
    return 0


if __name__ == '__main__':
    sys.exit(main())
