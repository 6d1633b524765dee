"""Builds the training loader from the options and the multigrid schedule (replaces basicsr's factory).

BasicSR sizes its epoch loop from the first batch size and lets every loader pick its own shape; here
the schedule decides the shape and batch of every iteration, and the sampler yields exactly `total_iter`
batches in all, so the loop ends at `total_iter` even when the batch size changes between phases.
"""
import random
from functools import partial
from os import path as osp

import numpy as np
import torch
from basicsr.data import build_dataloader, build_dataset
from basicsr.utils.registry import DATASET_REGISTRY

from basicsr_multigrid.archs.shape_limits import check_network_shapes
from basicsr_multigrid.data.video_frames import read_video_meta_info
from basicsr_multigrid.hooks import build_hooks
from basicsr_multigrid.models.teacher import check_teacher
from basicsr_multigrid.multigrid.sampler import ScheduledShapeBatchSampler
from basicsr_multigrid.multigrid.schedule import MultigridSchedule
from basicsr_multigrid.utils.errors import OptionError


def build_schedule(opt, clips=None):
    """The schedule of a run, checked against the network's limits and, when given, the training clips."""
    schedule = MultigridSchedule.from_options(opt)
    data_limits = {}
    if clips:
        data_limits['max_lq_size'] = min((c.shape[0] // opt['scale'], c.shape[1] // opt['scale']) for c in clips)
        data_limits['max_num_frame'] = min(clip.num_frames for clip in clips)
    check_network_shapes(schedule, opt.get('network_g', {}), **data_limits)
    return schedule


def preflight(opt):
    """Check what can be checked of a training run before any folder is created: data roots, meta file,
    the schedule against the network and the data, the hooks, this package's datasets, the teacher
    checkpoint of a distillation run. Raises OptionError naming the key."""
    if uses_scheduled_shapes(opt):
        train_opt = opt['datasets']['train']
        for key in ('dataroot_gt', 'dataroot_lq'):
            if not osp.exists(str(train_opt.get(key))):
                raise OptionError(f'datasets.train.{key}: not found: {train_opt.get(key)}')
        build_schedule(opt, read_video_meta_info(train_opt['meta_info_file']))
    build_hooks(opt.get('train', {}).get('hooks'))
    for dataset_opt in opt['datasets'].values():
        _check_own_dataset(dataset_opt)
    check_teacher(opt)


def _check_own_dataset(dataset_opt):
    """Construct this package's datasets once: option keys, frame files and shapes, nothing decoded. Not via
    basicsr's build_dataset, whose logging would initialise the root logger before its log file exists."""
    dataset_cls = dataset_class(dataset_opt)
    if dataset_cls.__module__.startswith('basicsr_multigrid.'):
        dataset_cls(dataset_opt)


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


def create_train_val_dataloader(opt, logger, start_iter=0):
    """Same contract as `basicsr.train.create_train_val_dataloader`, driven by the multigrid schedule."""
    train_loader = train_sampler = total_epochs = total_iters = None
    val_loaders = []
    for phase, dataset_opt in opt['datasets'].items():
        if phase == 'train':
            train_set = build_dataset(dataset_opt)
            schedule = build_schedule(opt, train_set.clips)
            train_loader, train_sampler = build_train_loader(opt, train_set, schedule, start_iter)
            total_iters = schedule.total_iter
            total_epochs = train_sampler.num_epochs - 1  # BasicSR loops over range(start_epoch, total_epochs + 1)
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
