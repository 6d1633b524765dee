"""The paired-video training dataset and the any-name validation dataset, on disk and LMDB, good and bad input."""
import os
import pickle
import random
import shutil
from os import path as osp

import numpy as np
import pytest
import torch

from basicsr_multigrid.data.dataset_layouts import folder_clips
from basicsr_multigrid.data.multigrid_paired_video_dataset import MultigridPairedVideoDataset
from basicsr_multigrid.data.paired_video_test_dataset import PairedVideoTestDataset
from basicsr_multigrid.data.video_frames import VideoDataError, read_video_meta_info
from basicsr_multigrid.multigrid.sampler import ShapedIndex
from basicsr_multigrid.data.bicubic import imresize_bicubic
from basicsr_multigrid.data.lmdb_builder import build_lmdb
from tests.conftest import train_dataset_options


def val_opt(root, **overrides):
    opt = dict(name='my_own_clips', phase='val', dataroot_gt=osp.join(root, 'val', 'GT'),
               dataroot_lq=osp.join(root, 'val', 'LQ'), io_backend={'type': 'disk'})
    opt.update(overrides)
    return opt


def folder_to_lmdb(folder, lmdb_path):
    """The LMDB that `tools/create_lmdb.py folder` builds (re-encoded PNGs, keys `clip/frame`)."""
    build_lmdb(lmdb_path, folder_clips(folder), workers=1, progress=False)


def test_item_shapes_at_default_and_scheduled_shapes(demo_data):
    dataset = MultigridPairedVideoDataset(train_dataset_options(demo_data))
    clips = read_video_meta_info(osp.join(demo_data, 'meta_info_train.txt'))
    assert len(dataset) == sum(c.num_frames for c in clips)  # every start frame is an item
    random.seed(0)
    item = dataset[3]
    assert item['lq'].shape == (5, 3, 16, 16) and item['gt'].shape == (5, 3, 64, 64)
    assert item['lq'].dtype == torch.float32 and 0 <= item['gt'].min() and item['gt'].max() <= 1
    item = dataset[ShapedIndex(3, 2, 32, seed=7)]  # from the multigrid sampler
    assert torch.equal(item['gt'], dataset[ShapedIndex(3, 2, 32, seed=7)]['gt'])  # draws follow the seed
    assert item['lq'].shape == (2, 3, 8, 8) and item['gt'].shape == (2, 3, 32, 32)


def test_crop_and_augmentation_keep_lq_and_gt_aligned(demo_data):
    """The LQ crop must be the x4 bicubic downscale of the GT crop, whatever crop/flip/rotation was drawn."""
    dataset = MultigridPairedVideoDataset(train_dataset_options(demo_data, num_frame=2, gt_size=32))
    random.seed(1)
    for index in range(0, len(dataset), 7):
        item = dataset[index]
        gt = item['gt'][0].permute(1, 2, 0).numpy().astype(np.float64)
        lq = item['lq'][0].permute(1, 2, 0).numpy()
        # border pixels see outside the crop when downscaled; compare the interior
        difference = np.abs(imresize_bicubic(gt, 1 / 4) - lq)[1:-1, 1:-1]
        assert difference.mean() < 0.02, (index, difference.mean())


def test_temporal_sampling_respects_clip_length_and_intervals(demo_data):
    dataset = MultigridPairedVideoDataset(train_dataset_options(demo_data, interval_list=[1, 2], random_reverse=True))
    random.seed(0)
    seen_intervals, reversed_seen = set(), False
    for start in range(12):
        indices = dataset._frame_indices('clip', 12, start, 5)
        steps = set(np.diff(indices))
        assert len(steps) == 1 and abs(steps.pop()) in (1, 2)
        assert 0 <= min(indices) and max(indices) <= 11
        seen_intervals.add(abs(indices[1] - indices[0]))
        reversed_seen |= indices[0] > indices[-1]
    assert seen_intervals == {1, 2} and reversed_seen
    # only interval 1 fits 12 frames of a 12-frame clip
    assert dataset._frame_indices('clip', 12, 5, 12) in (list(range(12)), list(range(11, -1, -1)))


def test_lmdb_round_trip_gives_identical_tensors(demo_data, tmp_path):
    gt_db, lq_db = str(tmp_path / 'train_GT.lmdb'), str(tmp_path / 'train_LQ.lmdb')
    folder_to_lmdb(osp.join(demo_data, 'train', 'GT'), gt_db)
    folder_to_lmdb(osp.join(demo_data, 'train', 'LQ'), lq_db)
    from_disk = MultigridPairedVideoDataset(train_dataset_options(demo_data))
    from_lmdb = MultigridPairedVideoDataset(train_dataset_options(demo_data, dataroot_gt=gt_db, dataroot_lq=lq_db,
                                                      io_backend={'type': 'lmdb'}))
    second_lmdb_reader = MultigridPairedVideoDataset(train_dataset_options(demo_data, dataroot_gt=gt_db, dataroot_lq=lq_db,
                                                               io_backend={'type': 'lmdb'}))  # same env, B11
    for index in (0, 17, len(from_disk) - 1):
        a, b, c = (dataset[ShapedIndex(index, 3, 32, seed=index)] for dataset in (from_disk, from_lmdb,
                                                                                   second_lmdb_reader))
        assert a['key'] == b['key'] == c['key']
        assert torch.equal(a['lq'], b['lq']) and torch.equal(a['gt'], b['gt']) and torch.equal(b['gt'], c['gt'])


def test_dataset_survives_pickling_for_worker_processes(demo_data):
    dataset = pickle.loads(pickle.dumps(MultigridPairedVideoDataset(train_dataset_options(demo_data))))
    assert dataset[ShapedIndex(0, 2, 32, seed=0)]['gt'].shape == (2, 3, 32, 32)


def test_validation_dataset_accepts_any_name_and_lists_every_frame(demo_data):
    dataset = PairedVideoTestDataset(val_opt(demo_data, cache_data=True))
    clips = read_video_meta_info(osp.join(demo_data, 'meta_info_val.txt'))
    assert len(dataset) == len(clips)
    assert len(dataset.data_info['folder']) == sum(c.num_frames for c in clips)
    item = dataset[0]
    assert item['folder'] == clips[0].name
    assert item['lq'].shape == (clips[0].num_frames, 3, 32, 32) and item['gt'].shape[-2:] == (128, 128)
    with_meta = PairedVideoTestDataset(val_opt(demo_data, meta_info_file=osp.join(demo_data, 'meta_info_val.txt')))
    assert [c.name for c in with_meta.clips] == [c.name for c in dataset.clips]


@pytest.fixture
def broken_copy(demo_data, tmp_path):
    """A private copy of the demo data that a test may damage."""
    root = str(tmp_path / 'data')
    shutil.copytree(demo_data, root)
    return root


def error_of(factory):
    with pytest.raises(VideoDataError) as info:
        factory()
    message = str(info.value)
    assert '\n' not in message
    return message


def test_bad_inputs_give_one_line_errors_naming_key_or_file(broken_copy):
    root = broken_copy
    missing_root = osp.join(root, 'nope')
    assert error_of(lambda: MultigridPairedVideoDataset(train_dataset_options(root, dataroot_gt=missing_root))) == \
        f'datasets.train.dataroot_gt: folder not found: {missing_root}'
    message = error_of(lambda: MultigridPairedVideoDataset(train_dataset_options(root, gt_size=66)))
    assert message.startswith('datasets.train.gt_size: 66 is not divisible by scale 4')
    message = error_of(lambda: MultigridPairedVideoDataset(train_dataset_options(root, gt_size=256)))
    assert message.startswith('datasets.train.gt_size: crop 256 is larger than the smallest GT frame 128x128')
    message = error_of(lambda: MultigridPairedVideoDataset(train_dataset_options(root, num_frame=50)))
    assert message.startswith('datasets.train.num_frame: 50 frames do not fit the shortest clip')
    message = error_of(lambda: MultigridPairedVideoDataset(train_dataset_options(root, meta_info_file=osp.join(root, 'x.txt'))))
    assert message.startswith('meta_info_file: file not found')

    meta = osp.join(root, 'meta_info_train.txt')
    clips = read_video_meta_info(meta)
    with open(meta, 'a') as f:
        f.write(f'{clips[0].name} {clips[0].num_frames + 1} (128,128,3)\n')
    missing_frame = osp.join(root, 'train', 'GT', clips[0].name, f'{clips[0].num_frames:08d}.png')
    assert error_of(lambda: MultigridPairedVideoDataset(train_dataset_options(root))).startswith(f'missing frame {missing_frame}')
    with open(meta, 'a') as f:
        f.write('garbage line\n')
    assert 'expected "clip frame_count (h,w,c)"' in error_of(lambda: MultigridPairedVideoDataset(train_dataset_options(root)))


def test_unreadable_frame_is_named_when_read(broken_copy):
    dataset = MultigridPairedVideoDataset(train_dataset_options(broken_copy, num_frame=12))
    clip = dataset.clips[0].name
    corrupt = osp.join(broken_copy, 'train', 'LQ', clip, '00000003.png')
    with open(corrupt, 'wb') as f:
        f.write(b'not a png')
    assert error_of(lambda: dataset[0]) == f'cannot decode frame {corrupt}'
    os.remove(corrupt)
    assert error_of(lambda: dataset[0]).startswith(f'cannot read frame {corrupt}')
