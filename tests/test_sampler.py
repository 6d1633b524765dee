"""The scheduled-shape batch sampler: exact iteration count, shapes, resume, DDP ranks, real DataLoader workers."""
import collections
import itertools
from os import path as osp

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from basicsr_multigrid.data.multigrid_paired_video_dataset import MultigridPairedVideoDataset
from basicsr_multigrid.multigrid.sampler import ScheduledShapeBatchSampler, ShapedIndex
from basicsr_multigrid.multigrid.schedule import MultigridSchedule


def schedule_for(total_iter=60, batch=2, num_frame=8, gt_size=64, **multigrid):
    opt = {'scale': 4, 'train': {'total_iter': total_iter, 'multigrid': multigrid or {'spatial_sizes': [8, 16]}},
           'datasets': {'train': {'num_frame': num_frame, 'gt_size': gt_size, 'batch_size_per_gpu': batch}}}
    return MultigridSchedule.from_options(opt)


def run_epochs(sampler, first_epoch=0):
    """What the runner's loop sees: set_epoch, then every batch of the epoch, until the schedule ends."""
    batches = []
    for epoch in range(first_epoch, sampler.num_epochs):
        sampler.set_epoch(epoch)
        assert len(sampler) == len(list(sampler))
        batches.extend(sampler)
    return batches


@settings(max_examples=40, deadline=None)
@given(total_iter=st.integers(6, 200), dataset_size=st.integers(1, 50), batch=st.integers(1, 5),
       scaling=st.sampled_from(['none', 'constant_compute', 'constant_iterations']), enlarge=st.integers(1, 3))
def test_exactly_total_iter_batches_at_the_scheduled_shapes(total_iter, dataset_size, batch, scaling, enlarge):
    schedule = schedule_for(total_iter, batch, batch_scaling=scaling, spatial_sizes=[8, 16])
    sampler = ScheduledShapeBatchSampler(schedule, dataset_size, seed=3, enlarge_ratio=enlarge)
    batches = run_epochs(sampler)
    assert len(batches) == schedule.total_iter  # the options' total_iter, or fewer under the sample budget
    for iteration, batch_items in enumerate(batches):
        phase = schedule.phase_at(iteration)
        assert len(batch_items) == phase.batch_size_per_gpu
        assert {(i.num_frame, i.gt_size) for i in batch_items} == {(phase.num_frame, phase.gt_size)}
        assert all(0 <= i.index < dataset_size for i in batch_items)


def test_one_pass_over_the_data_visits_every_item_once():
    schedule = schedule_for(total_iter=50, batch=2)
    sampler = ScheduledShapeBatchSampler(schedule, dataset_size=20, seed=0)
    first_pass = [item.index for batch in run_epochs(sampler)[:10] for item in batch]
    assert sorted(first_pass) == list(range(20))
    assert first_pass != list(range(20))  # shuffled


@pytest.mark.parametrize('resume_at', [0, 1, 7, 15, 20, 31, 59])
def test_resume_at_any_iteration_reads_what_an_uninterrupted_run_reads(resume_at):
    schedule = schedule_for(total_iter=60, batch=3, batch_scaling='constant_iterations', spatial_sizes=[8, 16])
    uninterrupted = run_epochs(ScheduledShapeBatchSampler(schedule, 17, seed=5))
    resumed_sampler = ScheduledShapeBatchSampler(schedule, 17, seed=5, start_iter=resume_at)
    resume_epoch = resume_at // resumed_sampler.iters_per_epoch  # what the runner saved with the state
    assert run_epochs(resumed_sampler, first_epoch=resume_epoch) == uninterrupted[resume_at:]


def test_ranks_agree_on_shapes_and_length_and_never_share_a_sample():
    schedule = schedule_for(total_iter=40, batch=2, batch_scaling='constant_iterations', spatial_sizes=[8, 16])
    world = 3
    per_rank = [run_epochs(ScheduledShapeBatchSampler(schedule, 1000, world_size=world, rank=r, seed=1))
                for r in range(world)]
    assert len({len(batches) for batches in per_rank}) == 1
    for iteration, batches in enumerate(zip(*per_rank)):
        shapes = {(len(b), b[0].num_frame, b[0].gt_size) for b in batches}
        assert len(shapes) == 1
        seeds = [item.seed for b in batches for item in b]
        assert len(seeds) == len(set(seeds))  # distinct global positions
    indices = [item.index for batches in per_rank for b in batches for item in b]
    assert len(indices) == len(set(indices))  # 1000 samples suffice: no sample is read twice


def test_seed_controls_order_and_item_draws():
    schedule = schedule_for()
    a, b = (run_epochs(ScheduledShapeBatchSampler(schedule, 30, seed=s)) for s in (0, 0))
    c = run_epochs(ScheduledShapeBatchSampler(schedule, 30, seed=1))
    assert a == b and a != c


def test_real_loader_with_persistent_workers_builds_every_batch_at_its_shape(demo_data):
    """DataLoader workers, persistent across epochs, get their shape from each item: no shared state."""
    opt = dict(phase='train', scale=4, dataroot_gt=osp.join(demo_data, 'train', 'GT'),
               dataroot_lq=osp.join(demo_data, 'train', 'LQ'), meta_info_file=osp.join(demo_data, 'meta_info_train.txt'),
               io_backend={'type': 'disk'}, num_frame=6, gt_size=64)
    dataset = MultigridPairedVideoDataset(opt)
    schedule = schedule_for(total_iter=12, batch=2, num_frame=6, gt_size=64, spatial_sizes=[8, 16])
    sampler = ScheduledShapeBatchSampler(schedule, len(dataset), seed=0)
    sampler.iters_per_epoch = 5  # several epochs, so persistent workers outlive set_epoch
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=2, persistent_workers=True)
    seen = []
    for epoch in range(sampler.num_epochs):
        sampler.set_epoch(epoch)
        seen.extend((tuple(batch['lq'].shape), tuple(batch['gt'].shape)) for batch in loader)
    expected = [((p.batch_size_per_gpu, p.num_frame, 3, p.lq_size, p.lq_size),
                 (p.batch_size_per_gpu, p.num_frame, 3, p.gt_size, p.gt_size))
                for p in map(schedule.phase_at, range(12))]
    assert seen == expected
    # workers give the same tensors as the main process: item draws come from the item's own seed
    sampler.set_epoch(0)
    first = next(iter(loader))
    items = [dataset[i] for i in sampler.batch_at(0)]
    assert torch.equal(first['gt'], torch.stack([item['gt'] for item in items]))


def test_shaped_index_is_a_plain_tuple():
    item = ShapedIndex(1, 2, 3, 4)
    assert isinstance(item, tuple) and item == (1, 2, 3, 4)
    assert collections.Counter(itertools.chain(item)) == collections.Counter([1, 2, 3, 4])


# ---------------------------------------------------------------------------- batch_scaling: constant_compute
def budget_schedule():
    schedule = schedule_for(total_iter=120, batch=3, batch_scaling='constant_compute', spatial_sizes=[8, 16])
    assert len({p.batch_size_per_gpu for p in schedule.phases}) > 1 and schedule.total_iter < 120
    return schedule


def test_sample_budget_resume_at_any_iteration_reads_what_an_uninterrupted_run_reads():
    schedule = budget_schedule()
    uninterrupted = run_epochs(ScheduledShapeBatchSampler(schedule, 17, seed=5))
    assert len(uninterrupted) == schedule.total_iter
    assert [len(b) for b in uninterrupted] == [schedule.batch_size_at(i) for i in range(schedule.total_iter)]
    for resume_at in range(schedule.total_iter):
        resumed_sampler = ScheduledShapeBatchSampler(schedule, 17, seed=5, start_iter=resume_at)
        resume_epoch = resume_at // resumed_sampler.iters_per_epoch  # what the runner saved with the state
        assert run_epochs(resumed_sampler, first_epoch=resume_epoch) == uninterrupted[resume_at:]


def test_ranks_agree_on_the_sample_budget_schedule():
    schedule = budget_schedule()
    per_rank = [run_epochs(ScheduledShapeBatchSampler(schedule, 1000, world_size=2, rank=r, seed=1)) for r in range(2)]
    assert len(per_rank[0]) == len(per_rank[1]) == schedule.total_iter
    for first, second in zip(*per_rank):
        assert (len(first), first[0].num_frame, first[0].gt_size) == (len(second), second[0].num_frame,
                                                                      second[0].gt_size)
        assert not {item.seed for item in first} & {item.seed for item in second}
