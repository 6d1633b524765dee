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
import time

from basicsr_multigrid.inference.networks import choose_device, trained_network
from basicsr_multigrid.inference.vfi import FACTORS, FrameInterpolator
from basicsr_multigrid.inference.video_io import VideoSink, VideoSource
from basicsr_multigrid.inference.video_tool import GroundTruth, run_tool, video_tool_parser, write_frames


def parse_args(argv):
    parser = video_tool_parser(__doc__, 'high-frame-rate ground truth: prints the mean PSNR of the new frames')
    parser.add_argument('--factor', type=int, default=2, choices=FACTORS, help='frame-rate multiplier (default 2)')
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
    truth = GroundTruth(args.gt) if args.gt else None
    started = time.perf_counter()
    sink = VideoSink(args.output, source.fps * args.factor, args.codec, args.crf, audio_from=source,
                     overwrite=args.overwrite)
    for index, frame in write_frames(interpolator.interpolate(source.frames()), sink, total):
        if truth:
            truth.next_for(index, frame, counts=index % args.factor != 0)  # only the frames the network made
    seconds = time.perf_counter() - started
    print(f'{args.output}: {sink.count} frames at {float(source.fps * args.factor):g} fps; '
          f'{sink.count / seconds:.2f} frames/s')
    if truth:
        print(truth.mean_line('the interpolated frames'))


def main(argv=None):
    return run_tool(interpolate, parse_args(argv))
