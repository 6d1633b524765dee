"""The panel `make demo` ends with: a trained VSR network on the first validation clip of a demo / footage folder,
bicubic | model | ground truth crops of its middle frame."""
from os import path as osp

from basicsr_multigrid.data.video_frames import read_video_meta_info
from basicsr_multigrid.inference.networks import trained_network
from basicsr_multigrid.inference.panels import write_panel
from basicsr_multigrid.inference.video_io import VideoSource
from basicsr_multigrid.inference.vsr import FrameUpscaler


def first_val_clip_panel(experiment, data):
    """Writes the panel next to the experiment; returns a line saying where, with both PSNRs of the frame."""
    opt, network, _, _ = trained_network(experiment=experiment)
    clip = read_video_meta_info(osp.join(data, 'meta_info_val.txt'))[0].name
    lq = list(VideoSource(osp.join(data, 'val', 'LQ', clip)).frames())
    gt = list(VideoSource(osp.join(data, 'val', 'GT', clip)).frames())
    outputs = list(FrameUpscaler(network, opt['scale'], 'cpu').upscale(lq))
    middle = len(lq) // 2
    path = osp.join(experiment, f'compare_{clip}.png')
    psnrs = write_panel(path, lq[middle], {'model': outputs[middle]}, opt['scale'], gt[middle])
    return f"{path} (frame {middle} of {clip}: model {psnrs['model']:.2f} dB, bicubic {psnrs['bicubic']:.2f} dB)"
