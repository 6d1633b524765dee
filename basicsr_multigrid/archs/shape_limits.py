"""The smallest LR patch and clip each video network can train on, for checking a schedule before training.

With the compat fixes B17 (SpyNet below 33 px) and B18 (BasicVSR++ below 64 px) the flow-based networks
train at every shape of the paper's schedule; what remains are hard structural limits.
"""


def shape_limits_for(network_opt):
    """Keyword arguments for `MultigridSchedule.check_limits` from a `network_g` option dict."""
    arch = network_opt.get('type', '')
    limits = {'model_name': arch}
    if arch == 'IconVSR':
        # its EDVR feature extractor reads 2 * temporal_padding + 1 neighbouring frames around key frames
        limits['min_num_frame'] = 2 * network_opt.get('temporal_padding', 2) + 1
    elif arch == 'EDVR':
        # PCD alignment downsamples twice (x4 with pre-deblurring); TSA fusion is built for a fixed clip length
        limits['lq_size_multiple'] = 16 if network_opt.get('with_predeblur', False) else 4
        limits['min_num_frame'] = limits['max_num_frame'] = network_opt.get('num_frame', 5)
    return limits
