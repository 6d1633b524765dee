"""The shapes each video network can train on, for checking a schedule before training.

With the compat fixes B17 (SpyNet below 33 px) and B18 (BasicVSR++ below 64 px) the flow-based networks
train at every shape of the paper's schedule; what remains are hard structural limits.
"""
from basicsr_multigrid.multigrid.schedule import ScheduleError


def shape_limits_for(network_opt):
    """Keyword arguments for `MultigridSchedule.check_limits` from a `network_g` option dict."""
    arch = network_opt.get('type', '')
    limits = {'model_name': arch}
    if arch == 'IconVSR':
        # its EDVR feature extractor reads 2 * temporal_padding + 1 neighbouring frames around key frames
        limits['min_num_frame'] = 2 * network_opt.get('temporal_padding', 2) + 1
    elif arch == 'EDVR':
        # PCD alignment downsamples twice (x4 with pre-deblurring)
        limits['lq_size_multiple'] = 16 if network_opt.get('with_predeblur', False) else 4
    return limits


def check_network_shapes(schedule, network_opt, **data_limits):
    """Raise ScheduleError naming the key to change if the network or the data cannot take every phase."""
    schedule.check_limits(**shape_limits_for(network_opt), **data_limits)
    if network_opt.get('type') == 'EDVR':  # TSA fusion is built for one clip length
        fixed = network_opt.get('num_frame', 5)
        lengths = sorted({phase.num_frame for phase in schedule.phases})
        if lengths != [fixed]:
            raise ScheduleError(f'train.multigrid.temporal_fractions: EDVR is built for {fixed}-frame clips '
                                f'(network_g.num_frame) but the schedule uses {lengths}; use temporal_fractions: '
                                f'[1.0] and datasets.train.num_frame: {fixed}')
