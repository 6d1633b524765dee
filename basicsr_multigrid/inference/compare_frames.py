"""Side-by-side crop panel of one frame: bicubic | model output(s) | ground truth, with PSNR on each tile.

    python tools/compare_frames.py --lq lq/00000050.png --output model=out/00000050.png \
        [--output other=b.png] [--gt gt/00000050.png] [--scale 4] [--crop LEFT,TOP,WIDTH,HEIGHT] --out panel.png

The bicubic tile is the LQ frame upscaled with OpenCV's bicubic; the crop (HR pixels) defaults to the centre.
"""
import argparse
import sys

from basicsr_multigrid.data.video_frames import read_rgb_image
from basicsr_multigrid.inference.panels import write_panel
from basicsr_multigrid.inference.video_tool import USAGE_ERROR
from basicsr_multigrid.utils.errors import OptionError


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--lq', required=True, help='the low-resolution input frame')
    parser.add_argument('--output', action='append', required=True, metavar='[NAME=]FILE',
                        help='an upscaled frame (repeatable); NAME labels its tile (default: model)')
    parser.add_argument('--gt', help='ground-truth frame: adds its tile and PSNR on the others')
    parser.add_argument('--scale', type=int, default=4)
    parser.add_argument('--crop', help='LEFT,TOP,WIDTH,HEIGHT in HR pixels (default: a centred 192 px square)')
    parser.add_argument('--out', required=True, help='panel PNG to write')
    return parser.parse_args(argv)


def crop_box(text):
    try:
        left, top, width, height = (int(v) for v in text.split(','))
    except ValueError:
        raise OptionError(f'--crop: expected LEFT,TOP,WIDTH,HEIGHT in pixels, got {text!r}') from None
    return top, left, height, width


def main(argv=None):
    args = parse_args(argv)
    try:
        outputs = {}
        for item in args.output:
            name, _, file = item.rpartition('=')
            outputs[name or 'model'] = read_rgb_image(file, '--output')
        gt = read_rgb_image(args.gt, '--gt') if args.gt else None
        psnrs = write_panel(args.out, read_rgb_image(args.lq, '--lq'), outputs, args.scale, gt,
                            crop_box(args.crop) if args.crop else None)
    except OptionError as error:
        print(f'error: {error}', file=sys.stderr)
        return USAGE_ERROR
    shown = ', '.join(f'{n} {p:.2f} dB' for n, p in psnrs.items() if p is not None)
    print(f'{args.out}' + (f': PSNR {shown}' if shown else ''))
    return 0
