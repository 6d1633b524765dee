"""Every supported VSR network trains (forward + backward) at the paper's first-stage shape: LR 32x32 patches
and the shortest clip of the schedule (7 of 15 frames; EDVR-M keeps its fixed 5)."""
import pytest
import torch
from basicsr.utils.registry import ARCH_REGISTRY

from basicsr_multigrid.archs.shape_limits import ShapeLimits
from basicsr_multigrid.multigrid.dataloader import check_network_shapes
from basicsr_multigrid.multigrid.schedule import MultigridSchedule, ScheduleError
from tests.conftest import TINY_VSR_NETWORKS


def paper_schedule(num_frame, temporal_fractions=(0.5, 0.75, 1.0)):
    opt = {'scale': 4, 'train': {'total_iter': 600, 'multigrid': {'spatial_sizes': [32, 64],
                                                                  'temporal_fractions': list(temporal_fractions)}},
           'datasets': {'train': {'num_frame': num_frame, 'gt_size': 256, 'batch_size_per_gpu': 1}}}
    return MultigridSchedule.from_options(opt)


@pytest.mark.parametrize('arch', sorted(TINY_VSR_NETWORKS))
def test_network_trains_at_lr32_and_the_shortest_clip(arch):
    schedule = paper_schedule(5, [1.0]) if arch == 'EDVR' else paper_schedule(15)
    check_network_shapes(schedule, {'type': arch, **TINY_VSR_NETWORKS[arch]})
    first = schedule.phases[0]
    assert first.lq_size == 32 and first.num_frame == (5 if arch == 'EDVR' else 7)
    torch.manual_seed(0)
    net = ARCH_REGISTRY.get(arch)(**TINY_VSR_NETWORKS[arch])
    lq = torch.rand(1, first.num_frame, 3, 32, 32)
    out = net(lq)
    expected = (1, 3, 128, 128) if arch == "EDVR" else (1, first.num_frame, 3, 128, 128)
    assert out.shape == expected
    out.mean().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_shape_limits_reject_what_a_network_cannot_train_on():
    with pytest.raises(ScheduleError, match=r'^train.multigrid.temporal_fractions: .*IconVSR'):
        check_network_shapes(paper_schedule(8), {'type': 'IconVSR'})  # 4 frames < 5
    with pytest.raises(ScheduleError, match=r'^train.multigrid.temporal_fractions: EDVR is built for 5-frame'):
        check_network_shapes(paper_schedule(15), {'type': 'EDVR', 'num_frame': 5})
    odd_sizes = paper_schedule(5, [1.0]).to_dict()
    odd_sizes['phases'][0].update(lq_size=30, gt_size=120)
    with pytest.raises(ScheduleError, match=r'^train.multigrid.spatial_sizes: .*EDVR'):
        check_network_shapes(MultigridSchedule.from_dict(odd_sizes), {'type': 'EDVR'})  # PCD needs multiples of 4


def test_an_arch_declares_its_own_shape_limits():
    """Any registered arch (a user's too) can declare limits with a `shape_limits` classmethod."""
    class LongClipNet(torch.nn.Module):

        @classmethod
        def shape_limits(cls, network_opt):
            return ShapeLimits(min_num_frame=network_opt['min_frames'])

    ARCH_REGISTRY._obj_map['LongClipNet'] = LongClipNet
    try:
        check_network_shapes(paper_schedule(15), {'type': 'LongClipNet', 'min_frames': 7})
        with pytest.raises(ScheduleError, match=r'below the model minimum 8 \(LongClipNet\)'):
            check_network_shapes(paper_schedule(15), {'type': 'LongClipNet', 'min_frames': 8})
    finally:
        del ARCH_REGISTRY._obj_map['LongClipNet']
