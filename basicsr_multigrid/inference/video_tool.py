"""What tools/upscale_video.py and tools/interpolate_video.py share: the network and video arguments, the loop
that writes every output frame (progress bar, PSNR against an optional ground truth), and their one-line errors
(exit status 2 for bad input, 1 for a write that failed, with nothing left under --output)."""
import argparse
import sys

from basicsr.metrics import calculate_psnr

from basicsr_multigrid.inference.video_io import CODECS, VideoSource
from basicsr_multigrid.utils.errors import OptionError

USAGE_ERROR = 2
WRITE_ERROR = 1


def video_tool_parser(doc, gt_help):
    """The arguments both tools take; each adds its own."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0], epilog=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('-opt', help='option file whose network_g (and scale) to build')
    source.add_argument('--experiment', help='experiment folder: its option file and newest net_g weights')
    parser.add_argument('--weights', help='checkpoint (required with -opt)')
    parser.add_argument('--param-key', default='auto', help='entry of the checkpoint (default auto)')
    parser.add_argument('--input', required=True, help='video file or folder of frames')
    parser.add_argument('--output', required=True, help='video file (.mp4 / .mov / .mkv) or folder for PNG frames')
    parser.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'))
    parser.add_argument('--precision', default='fp32', choices=('fp32', 'bf16', 'fp16'))
    parser.add_argument('--codec', choices=CODECS, help='default: h264 for files, png for folders')
    parser.add_argument('--crf', type=int, default=18, help='H.264 quality (lower is better, default 18)')
    parser.add_argument('--gt', help=gt_help)
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output')
    return parser


class GroundTruth:
    """The frames of --gt, one per output frame, and the PSNR of the output frames that count."""

    def __init__(self, path):
        self.frames = VideoSource(path, option_key='--gt').frames()
        self.psnrs = []

    def next_for(self, index, frame, counts=True):
        """The ground-truth frame of output frame `index` (scored when it `counts`)."""
        gt = next(self.frames, None)
        if gt is None or gt.shape != frame.shape:
            raise OptionError(f'--gt: frame {index} is missing or not {frame.shape[1]}x{frame.shape[0]}')
        if counts:
            self.psnrs.append(calculate_psnr(frame, gt, crop_border=0))
        return gt

    def mean_line(self, what):
        return f'PSNR of {what} against --gt: {sum(self.psnrs) / len(self.psnrs):.3f} dB (RGB, mean over ' \
               f'{len(self.psnrs)} frames)'


def write_frames(frames, sink, total):
    """Every frame into `sink` (published when all are written), with a progress bar (frames/s, ETA) on stderr;
    yields (index, frame) after writing it."""
    from tqdm import tqdm
    with tqdm(total=total, unit='frame', dynamic_ncols=True, file=sys.stderr) as bar, sink:
        for index, frame in enumerate(frames):
            sink.write(frame)
            bar.update(1)
            yield index, frame


def run_tool(work, args):
    """`work(args)` with bad input and failed writes as one line on stderr; returns the exit status."""
    try:
        work(args)
    except OptionError as error:
        print(f'error: {error}', file=sys.stderr)
        return USAGE_ERROR
    except OSError as error:  # a full disk or a vanished folder while writing: nothing is left under --output
        print(f'error: writing {args.output}: {error}', file=sys.stderr)
        return WRITE_ERROR
    return 0
