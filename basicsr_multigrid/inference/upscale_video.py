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
import time

from basicsr_multigrid.inference.networks import choose_device, trained_network
from basicsr_multigrid.inference.panels import write_panel
from basicsr_multigrid.inference.video_io import VideoSink, VideoSource
from basicsr_multigrid.inference.video_tool import GroundTruth, run_tool, video_tool_parser, write_frames
from basicsr_multigrid.inference.vsr import FrameUpscaler


def parse_args(argv):
    parser = video_tool_parser(__doc__, 'ground truth (video or frame folder): prints the mean PSNR over frames')
    parser.add_argument('--chunk', type=int, help='frames per chunk for recurrent networks (default: whole video)')
    parser.add_argument('--overlap', type=int, default=0, help='frames shared by consecutive chunks')
    parser.add_argument('--tile', type=int, help='LR tile size for frames too large for memory')
    parser.add_argument('--tile-overlap', type=int, default=16, help='LR context pixels around each tile')
    parser.add_argument('--compare', help='also write a bicubic | model [| ground truth] crop panel (PNG) of the '
                                          'middle frame')
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
    truth = GroundTruth(args.gt) if args.gt else None
    middle = (source.num_frames or 1) // 2
    compare = {}
    started = time.perf_counter()
    sink = VideoSink(args.output, source.fps, args.codec, args.crf, audio_from=source, overwrite=args.overwrite)
    outputs = upscaler.upscale(keep_frame(source.frames(), middle, compare))
    for index, hr in write_frames(outputs, sink, source.num_frames):
        gt = truth.next_for(index, hr) if truth else None
        if index == middle:
            compare['output'], compare['gt'] = hr, gt
    seconds = time.perf_counter() - started
    audio = ', audio copied' if sink.audio_from is not None and sink.codec != 'png' else ''
    print(f'{args.output}: {sink.count} frames at {float(source.fps):g} fps{audio}; {sink.count / seconds:.2f} '
          'frames/s')
    if truth:
        print(truth.mean_line('the output'))
    if args.compare:
        write_panel(args.compare, compare['input'], {'model': compare['output']}, scale, compare['gt'])
        print(f"{args.compare}: bicubic | model{' | ground truth' if truth else ''}, frame {middle}")


def keep_frame(frames, index, store):
    """The frames, passed on; the one at `index` is also kept in store['input']."""
    for i, frame in enumerate(frames):
        if i == index:
            store['input'] = frame
        yield frame


def main(argv=None):
    return run_tool(upscale, parse_args(argv))
