"""Cut your own videos into a paired video dataset that the training and benchmark options read.

    python tools/make_video_dataset.py --input clips/ more.mp4 --out datasets/mine [--scale 4] [--clip-len 30] \
        [--val-clips 2 --test-clips 2] [--scene-threshold 0.15] [--overwrite]

Videos are decoded with PyAV; scene cuts split clips; frames are cropped to a multiple of --scale; LQ frames are
the MATLAB-bicubic 1/scale downscale of the GT frames. train / val / test are split by whole video. Output:
<out>/{train,val,test}/{GT,LQ}/<clip>/%08d.png, <out>/meta_info_<split>.txt, <out>/dataset_info.json. Train on it
with `python tools/benchmark_multigrid.py --preset cpu-small --data <out>` or by pointing an option file's
dataroot_gt / dataroot_lq / meta_info_file at it.
"""
import argparse
import sys
from os import path as osp

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from basicsr_multigrid.data.footage import FootageError, make_video_dataset  # noqa: E402

USAGE_ERROR = 2


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--input', nargs='+', required=True, help='video files and / or folders of them')
    parser.add_argument('--out', required=True, help='dataset folder to write')
    parser.add_argument('--scale', type=int, default=4, help='LQ = GT / scale (default 4)')
    parser.add_argument('--clip-len', type=int, default=30, help='frames per clip (default 30)')
    parser.add_argument('--val-clips', type=int, default=2, help='clips (of whole videos) for validation')
    parser.add_argument('--test-clips', type=int, default=2, help='clips (of whole videos) for the test split')
    parser.add_argument('--scene-threshold', type=float, default=0.15,
                        help='mean absolute difference of 32x32 grey thumbnails (0-1) that counts as a scene cut')
    parser.add_argument('--overwrite', action='store_true', help='replace an earlier dataset in --out')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        info = make_video_dataset(args.input, args.out, scale=args.scale, clip_len=args.clip_len,
                                  val_clips=args.val_clips, test_clips=args.test_clips,
                                  scene_threshold=args.scene_threshold, overwrite=args.overwrite)
    except FootageError as error:
        print(f'error: {error}', file=sys.stderr)
        return USAGE_ERROR
    clips = ', '.join(f'{n} {split}' for split, n in info['clips'].items())
    bicubic = ', '.join(f'{split} {psnr:.2f} dB' for split, psnr in info['bicubic_psnr'].items())
    print(f'{args.out}: {clips} clips of {args.clip_len} frames; bicubic x{args.scale} PSNR {bicubic}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
