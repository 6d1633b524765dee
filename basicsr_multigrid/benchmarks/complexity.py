"""What a network costs: learnable parameters, multiply-accumulates of one forward (mmengine's conv / linear count
plus the warping ops that it cannot see) and CPU time per interpolated frame, networks timed in turn."""
import statistics
import time

import torch
from basicsr.utils.registry import ARCH_REGISTRY

from basicsr_multigrid.archs.ops.op_macs import counting_op_macs

PUBLISHED = {'teacher': {'type': 'STMFNet'}, 'mini': {'type': 'STMFNetMini'}}


def build_network(network_opt):
    network_opt = dict(network_opt)
    return ARCH_REGISTRY.get(network_opt.pop('type'))(**network_opt).eval()


def count_params(network):
    return sum(p.numel() for p in network.parameters())


def count_macs(network, frames):
    """{'macs': total, 'macs_conv_linear': mmengine's count, 'macs_ops': {warping op: MACs}} for one forward."""
    from mmengine.analysis import get_model_complexity_info
    with torch.no_grad():
        info = get_model_complexity_info(network, inputs=(frames, ), show_table=False, show_arch=False)
        with counting_op_macs() as op_macs:  # a forward of its own: mmengine's analysers run the network twice
            network(frames)
    conv_linear = int(info['flops'])  # mmengine's "flops" counts one multiply-add as one
    return {'macs': conv_linear + sum(op_macs.values()), 'macs_conv_linear': conv_linear, 'macs_ops': dict(op_macs)}


def time_forward(networks, frames, repeats):
    """{label: median ms per interpolated frame}; the networks take turns so that load changes hit all alike."""
    times = {label: [] for label in networks}
    with torch.no_grad():
        for label, network in networks.items():  # warm-up: allocator, thread pool
            network(frames)
        for _ in range(repeats):
            for label, network in networks.items():
                started = time.perf_counter()
                network(frames)
                times[label].append((time.perf_counter() - started) * 1000 / frames.size(0))
    return {label: statistics.median(values) for label, values in times.items()}


def complexity(network_opts, resolution, repeats, macs=True):
    """{label: params, macs, ms_per_frame, ms_per_frame_eager_ops} of networks built from `network_opts` ({label:
    network option}); `ms_per_frame_eager_ops` times the same networks with `fused_ops` off, where they have it."""
    torch.manual_seed(0)
    frames = torch.rand(1, 4, 3, resolution, resolution)
    networks = {label: build_network(opt) for label, opt in network_opts.items()}
    speed = time_forward(networks, frames, repeats)
    fusing = {label: network for label, network in networks.items() if getattr(network, 'fused_ops', False)}
    for network in fusing.values():
        network.fused_ops = False
    eager_speed = time_forward(fusing, frames, repeats) if fusing else {}
    eager_frames = {label: forward(network, frames) for label, network in fusing.items()}
    for network in fusing.values():
        network.fused_ops = True
    fused_error = {label: float((forward(fusing[label], frames) - frame).abs().max())
                   for label, frame in eager_frames.items()}
    return {label: dict(params=count_params(network), ms_per_frame=round(speed[label], 2),
                        **({'ms_per_frame_eager_ops': round(eager_speed[label], 2),
                            'fused_max_abs_diff': fused_error[label]} if label in fusing else {}),
                        **(count_macs(network, frames) if macs else {}))
            for label, network in networks.items()}


def forward(network, frames):
    with torch.no_grad():
        return network(frames)


def published_complexity(resolution, repeats):
    measured = complexity(PUBLISHED, resolution, repeats)
    teacher, mini = measured['teacher'], measured['mini']
    return dict(measured, params_ratio=round(mini['params'] / teacher['params'], 4),
                speedup=round(teacher['ms_per_frame'] / mini['ms_per_frame'], 3),
                speedup_eager_ops=round(teacher['ms_per_frame_eager_ops'] / mini['ms_per_frame_eager_ops'], 3),
                resolution=resolution)
