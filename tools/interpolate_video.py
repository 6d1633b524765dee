"""Raise the frame rate of a video (or a folder of frames) with a trained frame-interpolation network.

    python tools/interpolate_video.py -opt options/train/STMFNet/train_STMFNetMini_KD_Vimeo90K.yml \
        --weights net_g.pth --input in.mp4 --output out.mp4 [--factor 2|4|8] [--device auto|cpu|cuda] \
        [--precision fp32|bf16|fp16] [--codec h264|ffv1|png] [--gt gt_frames/]
    python tools/interpolate_video.py --experiment experiments/STMFNetMini_KD_demo --input frames/ --output out/

The network is `network_g` of the option file (STMFNet, STMFNetMini: four frames in, the middle of the inner two
out; weights as tools/upscale_video.py reads them, ST-MFNet's official `state_dict` included). The first and last
pair repeat the edge frame as their outside neighbour. --factor 4 and 8 interpolate recursively: n frames ->
factor * (n - 1) + 1 frames at factor x the frame rate (audio copied, duration unchanged). With --gt (the
high-frame-rate ground truth, same number of frames) the mean PSNR of the interpolated frames is printed.
"""
import argparse
import sys
import time
from os import path as osp

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import basicsr_multigrid  # noqa: E402,F401  (compat fixes + registration)
from basicsr.metrics import calculate_psnr  # noqa: E402

from basicsr_multigrid.inference.networks import choose_device, progress_bar, trained_network  # noqa: E402
from basicsr_multigrid.inference.vfi import FACTORS, FrameInterpolator  # noqa: E402
from basicsr_multigrid.inference.video_io import VideoSink, VideoSource  # noqa: E402
from basicsr_multigrid.utils.errors import OptionError  # noqa: E402

USAGE_ERROR = 2
WRITE_ERROR = 1


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('-opt', help='option file whose network_g to build')
    source.add_argument('--experiment', help='experiment folder: its option file and newest net_g weights')
    parser.add_argument('--weights', help='checkpoint (required with -opt)')
    parser.add_argument('--param-key', default='auto', help='entry of the checkpoint (default auto)')
    parser.add_argument('--input', required=True, help='video file or folder of frames')
    parser.add_argument('--output', required=True, help='video file (.mp4 / .mov / .mkv) or folder for PNG frames')
    parser.add_argument('--factor', type=int, default=2, choices=FACTORS, help='frame-rate multiplier (default 2)')
    parser.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'))
    parser.add_argument('--precision', default='fp32', choices=('fp32', 'bf16', 'fp16'))
    parser.add_argument('--codec', choices=('h264', 'ffv1', 'png'), help='default: h264 for files, png for folders')
    parser.add_argument('--crf', type=int, default=18, help='H.264 quality (lower is better, default 18)')
    parser.add_argument('--gt', help='high-frame-rate ground truth: prints the mean PSNR of the new frames')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output')
    return parser.parse_args(argv)


def interpolate(args):
    opt, network, weights, source_of_weights = trained_network(args.opt, args.weights, args.experiment,
                                                               args.param_key)
    device = choose_device(args.device)
    interpolator = FrameInterpolator(network, device, args.precision, args.factor)
    source = VideoSource(args.input)
    total = args.factor * (source.num_frames - 1) + 1 if source.num_frames else None
    print(f"{opt['network_g']['type']} x{args.factor} frame rate from {weights} ({source_of_weights}) on {device}, "
          f'{args.precision}')
    ground_truth = VideoSource(args.gt, option_key='--gt').frames() if args.gt else None
    psnrs = []
    started = time.perf_counter()
    sink = VideoSink(args.output, source.fps * args.factor, args.codec, args.crf, audio_from=source,
                     overwrite=args.overwrite)
    with progress_bar(total) as bar, sink:
        for index, frame in enumerate(interpolator.interpolate(source.frames())):
            sink.write(frame)
            bar.update(1)
            if ground_truth is not None:
                gt = next(ground_truth, None)
                if gt is None or gt.shape != frame.shape:
                    raise OptionError(f'--gt: frame {index} is missing or not {frame.shape[1]}x{frame.shape[0]}')
                if index % args.factor:  # only the frames the network made
                    psnrs.append(calculate_psnr(frame, gt, crop_border=0))
    seconds = time.perf_counter() - started
    print(f'{args.output}: {sink.count} frames at {float(source.fps * args.factor):g} fps; '
          f'{sink.count / seconds:.2f} frames/s')
    if psnrs:
        print(f'PSNR of the interpolated frames against --gt: {sum(psnrs) / len(psnrs):.3f} dB '
              f'(RGB, mean over {len(psnrs)} frames)')


def main(argv=None):
    args = parse_args(argv)
    try:
        interpolate(args)
    except OptionError as error:
        print(f'error: {error}', file=sys.stderr)
        return USAGE_ERROR
    except OSError as error:  # a full disk or a vanished folder while writing: nothing is left under --output
        print(f'error: writing {args.output}: {error}', file=sys.stderr)
        return WRITE_ERROR
    return 0


if __name__ == '__main__':
    sys.exit(main())
