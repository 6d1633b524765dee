"""What a training sample costs the data loader, per multigrid phase shape and storage backend.

The loader's workers take CPU from training without the step ever showing it as waiting, so the measure here is
the CPU time of the process that builds the sample (`time.process_time`: every thread of that process), taken in
a DataLoader worker exactly where training builds it, one sample at a time, on one thread (torch and OpenCV set to
one thread in the worker). Wall time is recorded beside it. The same items (index, seed) are loaded for every
backend of one data root, so backends are compared on identical crops; a few warm-up items per shape are not
counted. Page caches are warm (the data was just built or read): this is the decode-and-crop cost, not disk I/O.

`tools/benchmark_data.py` is the command line; docs/results/data-cost.json its output.
"""
import random
import time
from os import path as osp
from typing import NamedTuple

from basicsr_multigrid.data.frame_store import STORE_SUFFIX
from basicsr_multigrid.data.multigrid_paired_video_dataset import MultigridPairedVideoDataset
from basicsr_multigrid.data.video_frames import read_video_meta_info
from basicsr_multigrid.multigrid.sampler import ShapedIndex
from basicsr_multigrid.multigrid.schedule import MultigridSchedule
from basicsr_multigrid.utils.errors import OptionError

BACKEND_SUFFIXES = {'disk': '', 'lmdb': '.lmdb', 'frame_store': STORE_SUFFIX}  # <split>/GT<suffix>
DATASET_KEYS = ('interval_list', 'random_reverse', 'use_hflip', 'use_rot', 'gt_center_frame_only', 'filename_tmpl',
                'filename_ext')  # copied from the option file's training set


class Shape(NamedTuple):
    lq_size: int
    gt_size: int
    num_frame: int


def schedule_shapes(opt):
    """The distinct (lq_size, gt_size, num_frame) of the option dict's multigrid schedule, in schedule order."""
    shapes = []
    for phase in MultigridSchedule.from_options(opt).phases:
        shape = Shape(phase.lq_size, phase.gt_size, phase.num_frame)
        if shape not in shapes:
            shapes.append(shape)
    return shapes


def dataset_options(opt, root, backend, split='train'):
    """The option file's training set, reading `root` (a video-folder dataset: <root>/<split>/{GT,LQ},
    <root>/meta_info_<split>.txt) through `backend`."""
    if backend not in BACKEND_SUFFIXES:
        raise OptionError(f'backend: {backend!r} is not one of {", ".join(BACKEND_SUFFIXES)}')
    train = opt['datasets']['train']
    suffix = BACKEND_SUFFIXES[backend]
    options = {key: train[key] for key in DATASET_KEYS if key in train}
    options.update(name=f'{osp.basename(osp.normpath(root))}_{backend}', phase='train', scale=opt['scale'],
                   dataroot_gt=osp.join(root, split, 'GT' + suffix), dataroot_lq=osp.join(root, split, 'LQ' + suffix),
                   meta_info_file=osp.join(root, f'meta_info_{split}.txt'), io_backend={'type': backend},
                   num_frame=train['num_frame'], gt_size=train['gt_size'])
    return options


def frame_size(root, split='train'):
    """(width, height) of the first clip's GT frames, from the meta file."""
    height, width = read_video_meta_info(osp.join(root, f'meta_info_{split}.txt'))[0].shape[:2]
    return width, height


class _TimedItems:
    """Builds an item of `dataset` and returns only what it cost: (process CPU seconds, wall seconds)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        cpu, wall = time.process_time(), time.perf_counter()
        self.dataset[index]
        return time.process_time() - cpu, time.perf_counter() - wall


def _one_torch_thread(_worker_id):
    import torch
    torch.set_num_threads(1)


def shaped_items(length, shape, samples, seed):
    """`samples` ShapedIndex items of `shape`, the same for every backend of a dataset of `length` items."""
    rng = random.Random(f'{seed}/{shape.lq_size}/{shape.num_frame}')
    return [ShapedIndex(rng.randrange(length), shape.num_frame, shape.gt_size, rng.randrange(2**31))
            for _ in range(samples)]


def time_items(dataset, items, in_worker=True):
    """[(cpu_s, wall_s)] of loading each of `items`, in one DataLoader worker (or in this process), OpenCV and torch
    on one thread. (OpenCV's thread count is set here, before the fork, and restored: setting it in a forked worker
    can deadlock on the parent's thread pool.)"""
    import cv2
    import torch
    from torch.utils.data import DataLoader
    timed = _TimedItems(dataset)
    cv2_threads, torch_threads = cv2.getNumThreads(), torch.get_num_threads()
    cv2.setNumThreads(1)
    try:
        if not in_worker:
            torch.set_num_threads(1)
            return [timed[item] for item in items]
        loader = DataLoader(timed, batch_size=None, sampler=items, num_workers=1, worker_init_fn=_one_torch_thread)
        return [(float(cpu), float(wall)) for cpu, wall in loader]
    finally:
        cv2.setNumThreads(cv2_threads)
        torch.set_num_threads(torch_threads)


def measure_dataset(dataset, shapes, samples=20, seed=0, warmup=2, in_worker=True):
    """Per shape: milliseconds of CPU (and wall) time per sample, the mean over `samples` items after `warmup`."""
    rows = []
    for shape in shapes:
        items = shaped_items(len(dataset), shape, warmup + samples, seed)
        times = time_items(dataset, items, in_worker)[warmup:]
        rows.append(dict(shape._asdict(), samples=samples,
                         cpu_ms_per_sample=round(1000 * sum(cpu for cpu, _ in times) / samples, 3),
                         wall_ms_per_sample=round(1000 * sum(wall for _, wall in times) / samples, 3)))
    return rows


def measure_data_cost(opt, roots, backends, samples=20, seed=0, warmup=2, split='train'):
    """One run per (root, backend): its frame size and per-shape costs of the option dict's schedule shapes."""
    shapes = schedule_shapes(opt)
    runs = []
    for root in roots:
        width, height = frame_size(root, split)
        for backend in backends:
            dataset = MultigridPairedVideoDataset(dataset_options(opt, root, backend, split))
            runs.append({'data': root, 'frame_size': f'{width}x{height}', 'backend': backend,
                         'shapes': measure_dataset(dataset, shapes, samples, seed, warmup)})
    return runs


def _area(run):
    width, height = (int(side) for side in run['frame_size'].split('x'))
    return width * height


def target(runs, max_ratio=2.0, store_backend='frame_store', reference_backend='disk'):
    """The issue's target: a crop from the largest frames through the store costs at most `max_ratio` x the same
    crop shape from the smallest frames as PNG, at every shape (CPU time). None without both runs."""
    stores = [run for run in runs if run['backend'] == store_backend]
    references = [run for run in runs if run['backend'] == reference_backend]
    if not stores or not references:
        return None
    store, reference = max(stores, key=_area), min(references, key=_area)
    if _area(store) <= _area(reference):
        return None
    per_shape = []
    for ours, theirs in zip(store['shapes'], reference['shapes']):
        ratio = ours['cpu_ms_per_sample'] / theirs['cpu_ms_per_sample']
        per_shape.append({'lq_size': ours['lq_size'], 'num_frame': ours['num_frame'],
                          f'{store_backend}_{store["frame_size"]}_cpu_ms': ours['cpu_ms_per_sample'],
                          f'{reference_backend}_{reference["frame_size"]}_cpu_ms': theirs['cpu_ms_per_sample'],
                          'ratio': round(ratio, 3)})
    return {'rule': f'{store_backend} on {store["frame_size"]} frames <= {max_ratio} x {reference_backend} on '
                    f'{reference["frame_size"]} frames, CPU ms per sample, every shape',
            'max_ratio': max_ratio, 'met': all(row['ratio'] <= max_ratio for row in per_shape),
            'worst_ratio': max(row['ratio'] for row in per_shape), 'shapes': per_shape}
