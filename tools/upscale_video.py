"""Upscale a video (or a folder of frames) with a trained VSR network of the registry.

    python tools/upscale_video.py -opt options/train/BasicVSR/train_BasicVSR_REDS.yml --weights net_g.pth \
        --input in.mp4 --output out.mp4 [--chunk 50 --overlap 5] [--tile 256 --tile-overlap 16] \
        [--device auto|cpu|cuda] [--precision fp32|bf16|fp16] [--codec h264|ffv1|png] [--compare panel.png]
    python tools/upscale_video.py --experiment experiments/BasicVSR_multigrid_demo --input frames/ --output out/

The network is `network_g` of the option file (with --experiment: the option file the run copied into its folder
and its newest weights, net_g_latest.pth or the highest iteration). Weights load from BasicSR (`params_ema`, else
`params`), ST-MFNet (`state_dict`) and plain checkpoints (`--param-key auto`). Recurrent networks (BasicVSR,
IconVSR, BasicVSR++) run in chunks of --chunk frames that share --overlap frames, faded across in the output;
networks with `network_g.num_frame` (EDVR) run one window per frame. The output has the input's frame rate and
its audio (video files); a folder output gets PNG frames. Nothing is written under the output's name until it is
complete. --compare writes a bicubic | model crop panel of one frame (tools/compare_frames.py).
"""
import argparse
import sys
import time
from os import path as osp

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import basicsr_multigrid  # noqa: E402,F401  (compat fixes + registration)
from basicsr.metrics import calculate_psnr  # noqa: E402

from basicsr_multigrid.inference.panels import write_panel  # noqa: E402
from basicsr_multigrid.inference.networks import choose_device, progress_bar, trained_network  # noqa: E402
from basicsr_multigrid.inference.video_io import VideoSink, VideoSource  # noqa: E402
from basicsr_multigrid.inference.vsr import FrameUpscaler  # noqa: E402
from basicsr_multigrid.utils.errors import OptionError  # noqa: E402

USAGE_ERROR = 2
WRITE_ERROR = 1


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('-opt', help='option file whose network_g (and scale) to build')
    source.add_argument('--experiment', help='experiment folder: its option file and newest net_g weights')
    parser.add_argument('--weights', help='checkpoint (required with -opt)')
    parser.add_argument('--param-key', default='auto', help='entry of the checkpoint (default auto)')
    parser.add_argument('--input', required=True, help='video file or folder of frames')
    parser.add_argument('--output', required=True, help='video file (.mp4 / .mov / .mkv) or folder for PNG frames')
    parser.add_argument('--chunk', type=int, help='frames per chunk for recurrent networks (default: whole video)')
    parser.add_argument('--overlap', type=int, default=0, help='frames shared by consecutive chunks')
    parser.add_argument('--tile', type=int, help='LR tile size for frames too large for memory')
    parser.add_argument('--tile-overlap', type=int, default=16, help='LR context pixels around each tile')
    parser.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'))
    parser.add_argument('--precision', default='fp32', choices=('fp32', 'bf16', 'fp16'))
    parser.add_argument('--codec', choices=('h264', 'ffv1', 'png'), help='default: h264 for files, png for folders')
    parser.add_argument('--crf', type=int, default=18, help='H.264 quality (lower is better, default 18)')
    parser.add_argument('--gt', help='ground truth (video or frame folder): prints the mean PSNR over frames')
    parser.add_argument('--compare', help='also write a bicubic | model [| ground truth] crop panel (PNG) of the '
                                          'middle frame')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output')
    return parser.parse_args(argv)


def upscale(args):
    opt, network, weights, source_of_weights = trained_network(args.opt, args.weights, args.experiment,
                                                               args.param_key)
    scale = opt.get('scale', 4)
    window = opt['network_g'].get('num_frame')
    device = choose_device(args.device)
    upscaler = FrameUpscaler(network, scale, device, args.precision, window=window, chunk=args.chunk,
                             overlap=args.overlap, tile=args.tile, tile_overlap=args.tile_overlap)
    source = VideoSource(args.input)
    print(f"{opt['network_g']['type']} x{scale} from {weights} ({source_of_weights}) on {device}, {args.precision}; "
          f"{'window of ' + str(window) if window else 'chunk ' + str(args.chunk or 'whole video')}")
    ground_truth = VideoSource(args.gt, option_key='--gt').frames() if args.gt else None
    middle = (source.num_frames or 1) // 2
    compare, psnrs = {}, []
    started = time.perf_counter()
    sink = VideoSink(args.output, source.fps, args.codec, args.crf, audio_from=source, overwrite=args.overwrite)
    with progress_bar(source.num_frames) as bar, sink:
        for index, hr in enumerate(upscaler.upscale(keep_frame(source.frames(), middle, compare))):
            sink.write(hr)
            bar.update(1)
            if ground_truth is not None:
                gt = next(ground_truth, None)
                if gt is None or gt.shape != hr.shape:
                    raise OptionError(f'--gt: frame {index} is missing or not {hr.shape[1]}x{hr.shape[0]}')
                psnrs.append(calculate_psnr(hr, gt, crop_border=0))
                compare['gt'] = gt if index == middle else compare.get('gt')
            if index == middle:
                compare['output'] = hr
    seconds = time.perf_counter() - started
    audio = ', audio copied' if sink.audio_from is not None and sink.codec != 'png' else ''
    print(f'{args.output}: {sink.count} frames at {float(source.fps):g} fps{audio}; {sink.count / seconds:.2f} '
          'frames/s')
    if psnrs:
        print(f'PSNR against --gt: {sum(psnrs) / len(psnrs):.3f} dB (RGB, mean over {len(psnrs)} frames)')
    if args.compare:
        write_panel(args.compare, compare['input'], {'model': compare['output']}, scale, compare.get('gt'))
        print(f"{args.compare}: bicubic | model{' | ground truth' if psnrs else ''}, frame {middle}")


def keep_frame(frames, index, store):
    """The frames, passed on; the one at `index` is also kept in store['input']."""
    for i, frame in enumerate(frames):
        if i == index:
            store['input'] = frame
        yield frame


def main(argv=None):
    args = parse_args(argv)
    try:
        upscale(args)
    except OptionError as error:
        print(f'error: {error}', file=sys.stderr)
        return USAGE_ERROR
    except OSError as error:  # a full disk or a vanished folder while writing: nothing is left under --output
        print(f'error: writing {args.output}: {error}', file=sys.stderr)
        return WRITE_ERROR
    return 0


if __name__ == '__main__':
    sys.exit(main())
