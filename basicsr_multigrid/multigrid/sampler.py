"""Batch sampler that gives every batch the shape the multigrid schedule assigns to its iteration.

Every item of a batch is a `ShapedIndex(index, num_frame, gt_size, seed)`; DataLoader workers hand it to
the dataset, which crops and samples frames at that shape with its own `seed`. Nothing is mutated at run
time, so persistent workers, resumes and DDP ranks all agree.

Which sample an iteration reads is a pure function of the iteration: the global stream of samples is a
sequence of seeded permutations of the (enlarged) dataset, iteration i starts at global position
`world_size * schedule.samples_before(i)`, and rank r reads the r-th block of `batch_size_at(i)` positions
from there. So a run resumed at iteration k reads exactly what an uninterrupted run reads from k on, every
rank yields the same number of batches with the same shape, and ranks never share a sample.
"""
import math
from typing import NamedTuple

import torch


class ShapedIndex(NamedTuple):
    index: int
    num_frame: int
    gt_size: int
    seed: int


class ScheduledShapeBatchSampler:
    """Yields lists of `ShapedIndex`, one per iteration, epoch by epoch.

    The runner calls `set_epoch(e)` before iterating. Epoch e covers iterations
    `[e * iters_per_epoch, (e + 1) * iters_per_epoch)`, clipped to `[start_iter, total_iter)`, where
    `iters_per_epoch` is one pass over the enlarged dataset at the base batch size.
    """

    def __init__(self, schedule, dataset_size, world_size=1, rank=0, seed=0, enlarge_ratio=1, start_iter=0):
        if not 0 <= rank < world_size:
            raise ValueError(f'rank {rank} is outside world size {world_size}')
        self.schedule = schedule
        self.dataset_size = dataset_size
        self.num_positions = dataset_size * enlarge_ratio
        self.world_size, self.rank, self.seed = world_size, rank, seed
        self.start_iter = start_iter
        self.iters_per_epoch = max(1, math.ceil(self.num_positions / (schedule.base_batch_size * world_size)))
        self.epoch = 0
        self._permutation_epoch, self._permutation_cache = None, None

    @property
    def num_epochs(self):
        return math.ceil(self.schedule.total_iter / self.iters_per_epoch)

    def set_epoch(self, epoch):
        self.epoch = epoch

    def _iteration_range(self):
        first = max(self.epoch * self.iters_per_epoch, self.start_iter)
        return range(first, min((self.epoch + 1) * self.iters_per_epoch, self.schedule.total_iter))

    def __len__(self):
        return len(self._iteration_range())

    def __iter__(self):
        for iteration in self._iteration_range():
            yield self.batch_at(iteration)

    def batch_at(self, iteration):
        phase = self.schedule.phase_at(iteration)
        batch = phase.batch_size_per_gpu
        first = self.world_size * self.schedule.samples_before(iteration) + self.rank * batch
        return [ShapedIndex(self._index_at(p), phase.num_frame, phase.gt_size, self._item_seed(p))
                for p in range(first, first + batch)]

    def _index_at(self, position):
        data_epoch, offset = divmod(position, self.num_positions)
        return int(self._permutation(data_epoch)[offset]) % self.dataset_size

    def _permutation(self, data_epoch):
        """The shuffled order of one pass over the data; only the current pass is kept in memory."""
        if data_epoch != self._permutation_epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + data_epoch)
            self._permutation_cache = torch.randperm(self.num_positions, generator=generator)
            self._permutation_epoch = data_epoch
        return self._permutation_cache

    def _item_seed(self, position):
        """Crop, flip and frame draws of one sample depend only on the run seed and its global position."""
        return (self.seed * 0x9E3779B1 + position) % (2**63)
