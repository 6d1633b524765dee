"""Builds the training loader from the options and the multigrid schedule (used instead of basicsr's factory).

BasicSR lets every loader pick its own shape and sizes epochs from one batch size; here the schedule decides the
shape and batch of every iteration, and the sampler yields exactly the batches of iterations `start_iter` to
`total_iter`, however the batch size changes between phases.
"""
import random
from functools import partial

import numpy as np
import torch
from basicsr.data import build_dataloader, build_dataset
from basicsr.utils.registry import DATASET_REGISTRY

from basicsr_multigrid.archs.shape_limits import network_shape_limits
from basicsr_multigrid.multigrid.sampler import ScheduledShapeBatchSampler
from basicsr_multigrid.multigrid.schedule import MultigridSchedule, ScheduleError
from basicsr_multigrid.utils.errors import OptionError


def build_schedule(opt, clips=None):
    """The schedule of a run, checked against the network's limits and, when given, the training clips."""
    return check_schedule(MultigridSchedule.from_options(opt), opt, clips)


def check_schedule(schedule, opt, clips=None):
    """Raise ScheduleError naming the key if the network or the clips cannot take every phase; else the schedule."""
    data_limits = {}
    if clips:
        data_limits['max_lq_size'] = min((c.shape[0] // opt['scale'], c.shape[1] // opt['scale']) for c in clips)
        data_limits['max_num_frame'] = min(clip.num_frames for clip in clips)
    check_network_shapes(schedule, opt.get('network_g', {}), **data_limits)
    return schedule


def check_network_shapes(schedule, network_opt, **data_limits):
    """Raise ScheduleError naming the key to change if the network (its declared ShapeLimits) or the data
    cannot take every phase."""
    limits = network_shape_limits(network_opt)
    schedule.check_limits(min_num_frame=limits.min_num_frame, lq_size_multiple=limits.lq_size_multiple,
                          model_name=network_opt.get('type', ''), **data_limits)
    lengths = sorted({phase.num_frame for phase in schedule.phases})
    if limits.fixed_num_frame is not None and lengths != [limits.fixed_num_frame]:
        raise ScheduleError(f"train.multigrid.temporal_fractions: {network_opt['type']} is built for "
                            f'{limits.fixed_num_frame}-frame clips (network_g.num_frame) but the schedule uses '
                            f'{lengths}; use temporal_fractions: [1.0] and datasets.train.num_frame: '
                            f'{limits.fixed_num_frame}')


def _seed_worker(worker_id, seed):
    # Items draw from their own seeds; this only keeps torch/numpy RNGs in workers distinct and reproducible.
    torch.manual_seed(seed + worker_id)
    np.random.seed((seed + worker_id) % 2**32)
    random.seed(seed + worker_id)


def build_train_loader(opt, train_set, schedule, start_iter=0):
    dataset_opt = opt['datasets']['train']
    sampler = ScheduledShapeBatchSampler(
        schedule, len(train_set), world_size=opt['world_size'], rank=opt['rank'], seed=opt['manual_seed'],
        enlarge_ratio=dataset_opt.get('dataset_enlarge_ratio', 1), start_iter=start_iter)
    num_workers = dataset_opt.get('num_worker_per_gpu', 0)
    loader = torch.utils.data.DataLoader(
        train_set, batch_sampler=sampler, num_workers=num_workers,
        pin_memory=dataset_opt.get('pin_memory', False),
        persistent_workers=num_workers > 0 and dataset_opt.get('persistent_workers', False),
        worker_init_fn=partial(_seed_worker, seed=opt['manual_seed'] * 1000 + opt['rank'] * num_workers))
    return loader, sampler


def create_train_val_dataloader(opt, logger, schedule, start_iter=0):
    """Same contract as `basicsr.train.create_train_val_dataloader`, driven by the multigrid schedule: the
    train loader yields the batches of iterations `start_iter` to `total_iter` at their scheduled shapes."""
    train_loader = train_sampler = total_epochs = total_iters = None
    val_loaders = []
    for phase, dataset_opt in opt['datasets'].items():
        if phase == 'train':
            train_set = build_dataset(dataset_opt)
            check_schedule(schedule, opt, getattr(train_set, 'clips', None))
            train_loader, train_sampler = build_train_loader(opt, train_set, schedule, start_iter)
            total_iters = schedule.total_iter
            total_epochs = train_sampler.num_epochs - 1  # basicsr's factory's convention (epochs 0..total_epochs)
            logger.info(f'Training statistics:\n\tNumber of train clips x start frames: {len(train_set)}'
                        f'\n\tWorld size: {opt["world_size"]}\n\tIterations per epoch: '
                        f'{train_sampler.iters_per_epoch}\n\tTotal epochs: {train_sampler.num_epochs}; '
                        f'iters: {total_iters}\n\tMultigrid schedule:\n{schedule.format_table()}')
        elif phase.split('_')[0] == 'val':
            val_set = build_dataset(dataset_opt)
            val_loaders.append(build_dataloader(val_set, dataset_opt, num_gpu=opt['num_gpu'], dist=opt['dist'],
                                                sampler=None, seed=opt['manual_seed']))
            logger.info(f'Number of val clips in {dataset_opt["name"]}: {len(val_set)}')
        else:
            raise OptionError(f'datasets.{phase}: unknown dataset phase; use train, val or val_<n>')
    return train_loader, train_sampler, val_loaders, total_epochs, total_iters


def uses_scheduled_shapes(opt):
    """Whether the training set takes `ShapedIndex` items (else basicsr's own loader factory is used)."""
    train_opt = opt['datasets'].get('train')
    if train_opt is None:
        return False
    return getattr(dataset_class(train_opt), 'accepts_shaped_indices', False)


def dataset_class(dataset_opt):
    name = dataset_opt.get('type')
    if name not in DATASET_REGISTRY:
        raise OptionError(f"datasets.{dataset_opt.get('phase', 'train')}.type: no dataset named {name!r} is registered")
    return DATASET_REGISTRY.get(name)
