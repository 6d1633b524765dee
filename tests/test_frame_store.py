"""Frame stores (data/frame_store.py, tools/create_frame_store.py), the data-cost measurement
(benchmarks/data_cost.py, tools/benchmark_data.py) and the demo generator's frame size option."""
import json
import os
import random
import shutil
import time
from os import path as osp

import pytest
import torch
from torch.utils.data import DataLoader

from basicsr_multigrid.benchmarks import data_cost
from basicsr_multigrid.data import frame_store
from basicsr_multigrid.data.dataset_layouts import folder_clips
from basicsr_multigrid.data.demo_data import make_demo_dataset
from basicsr_multigrid.data.frame_store import build_frame_store, plan_frame_store
from basicsr_multigrid.data.multigrid_paired_video_dataset import MultigridPairedVideoDataset
from basicsr_multigrid.data.paired_video_test_dataset import PairedVideoTestDataset
from basicsr_multigrid.multigrid.sampler import ShapedIndex
from basicsr_multigrid.utils.errors import OptionError
from tests.conftest import MULTIGRID_DEMO, demo_options, load_yaml, run_tool, train_dataset_options, tree_digest

# tree_digest of `make_demo_dataset(out)` with every default (256 px, 20/10/10 frames, seed 0), recorded before the
# frame size option existed: the frozen demo numbers were measured on exactly these files.
DEFAULT_DEMO_DIGEST = 'c131a4d7c38713e8166e60f39b428c1cf05ad2f9'


def build_stores(demo_data, root, splits=('train',)):
    """`root`: the demo set's folders and meta files (linked) plus <split>/{GT,LQ}.frames built from them."""
    for split in splits:
        os.makedirs(osp.join(root, split), exist_ok=True)
        os.symlink(osp.join(demo_data, f'meta_info_{split}.txt'), osp.join(root, f'meta_info_{split}.txt'))
        for side in ('GT', 'LQ'):
            os.symlink(osp.join(demo_data, split, side), osp.join(root, split, side))
            build_frame_store(plan_frame_store(osp.join(root, split, f'{side}.frames'),
                                               folder_clips(osp.join(demo_data, split, side))))
    return str(root)


@pytest.fixture(scope='module')
def stored(demo_data, tmp_path_factory):
    return build_stores(demo_data, tmp_path_factory.mktemp('stores') / 'data', splits=('train', 'val'))


def store_options(root, **overrides):
    stores = dict(dataroot_gt=osp.join(root, 'train', 'GT.frames'), dataroot_lq=osp.join(root, 'train', 'LQ.frames'),
                  io_backend={'type': 'frame_store'})
    return train_dataset_options(root, **dict(stores, **overrides))


def one_line_error(build):
    with pytest.raises(OptionError) as info:
        build()
    assert '\n' not in str(info.value)
    return str(info.value)


def test_crops_are_byte_identical_to_the_png_path(stored):
    for overrides in ({}, {'interval_list': [1, 2], 'random_reverse': True}, {'gt_center_frame_only': True}):
        disk = MultigridPairedVideoDataset(train_dataset_options(stored, **overrides))
        store = MultigridPairedVideoDataset(store_options(stored, **overrides))
        for index, num_frame, gt_size in ((0, 5, 64), (7, 2, 32), (len(disk) - 1, 12, 128), (40, 3, 16)):
            item = ShapedIndex(index, num_frame, gt_size, seed=index + 100)
            a, b = disk[item], store[item]
            assert a['key'] == b['key'] and a['gt'].shape == b['gt'].shape
            assert torch.equal(a['lq'], b['lq']) and torch.equal(a['gt'], b['gt']), (overrides, item)
        random.seed(3)  # the fixed-shape path: int indices, draws from the global RNG
        a = disk[11]
        random.seed(3)
        b = store[11]
        assert torch.equal(a['lq'], b['lq']) and torch.equal(a['gt'], b['gt'])


def test_validation_clips_are_identical_and_listed_by_the_store(stored):
    def val_set(backend, suffix, meta=True):
        return PairedVideoTestDataset(dict(
            name='val', phase='val', dataroot_gt=osp.join(stored, 'val', 'GT' + suffix),
            dataroot_lq=osp.join(stored, 'val', 'LQ' + suffix), io_backend={'type': backend},
            meta_info_file=osp.join(stored, 'meta_info_val.txt') if meta else None))
    disk, store = val_set('disk', ''), val_set('frame_store', '.frames')
    listed = val_set('frame_store', '.frames', meta=False)
    assert [c.name for c in listed.clips] == [c.name for c in disk.clips]
    for index in range(len(disk)):
        a, b = disk[index], store[index]
        assert a['folder'] == b['folder'] and torch.equal(a['lq'], b['lq']) and torch.equal(a['gt'], b['gt'])


class _MapsSeen:
    """Each item: the data files this worker process had mapped before reading it, and the item."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return frame_store.open_maps(), self.dataset[index]


def test_loader_workers_map_the_store_themselves(stored):
    frame_store.close_maps()
    store = MultigridPairedVideoDataset(store_options(stored))
    assert frame_store.open_maps() == []  # nothing mapped until read
    items = [ShapedIndex(i, 4, 32, seed=i) for i in range(0, 60, 5)]
    store[items[0]]  # the parent maps the files before forking the workers
    assert any(path.startswith(osp.realpath(stored)) for path in frame_store.open_maps())
    disk = MultigridPairedVideoDataset(train_dataset_options(stored))
    loader = DataLoader(_MapsSeen(store), batch_size=None, sampler=items, num_workers=2)
    seen = list(loader)
    assert len(seen) == len(items)
    first_in_worker = [seen[0][0], seen[1][0]]  # worker 0 builds items 0, 2, ...; worker 1 items 1, 3, ...
    assert first_in_worker == [[], []]  # nothing inherited: each worker opened its own map on first read
    for item, (_, loaded) in zip(items, seen):
        expected = disk[item]
        assert torch.equal(loaded['lq'], expected['lq']) and torch.equal(loaded['gt'], expected['gt'])


def test_size_estimate_is_the_bytes_written(demo_data, tmp_path):
    out = tmp_path / 'GT.frames'
    result = run_tool('create_frame_store', 'folder', '--input', osp.join(demo_data, 'train', 'GT'), '--out', out,
                      '--no-progress')
    assert result.returncode == 0, result.stderr
    estimate = int(result.stdout.splitlines()[0].split(' bytes')[0].rsplit(' ', 1)[1])
    written = sum(osp.getsize(osp.join(out, name)) for name in os.listdir(out))
    assert estimate == written
    plan = plan_frame_store(str(tmp_path / 'LQ.frames'), folder_clips(osp.join(demo_data, 'train', 'LQ')))
    assert build_frame_store(plan).bytes == plan.total_bytes


def test_bad_input_is_one_line_naming_the_file(stored, tmp_path):
    empty = tmp_path / 'empty.frames'
    empty.mkdir()
    message = one_line_error(lambda: MultigridPairedVideoDataset(store_options(stored, dataroot_lq=str(empty))))
    assert message.startswith(f'datasets.train.dataroot_lq: frame store index not found: {empty / "index.json"}')

    broken = tmp_path / 'GT.frames'
    shutil.copytree(osp.join(stored, 'train', 'GT.frames'), broken)
    data_file = broken / 'frames.bin'
    with open(data_file, 'r+b') as f:
        f.truncate(osp.getsize(data_file) - 1)
    message = one_line_error(lambda: MultigridPairedVideoDataset(store_options(stored, dataroot_gt=str(broken))))
    assert message.startswith(f'{data_file}: ') and 'rebuild the store' in message
    os.remove(data_file)
    message = one_line_error(lambda: MultigridPairedVideoDataset(store_options(stored, dataroot_gt=str(broken))))
    assert message == f'datasets.train.dataroot_gt: frame store data not found: {data_file}'


def test_preflight_names_a_missing_store(demo_data, tmp_path):
    from basicsr_multigrid.training.preflight import preflight
    gt, lq = tmp_path / 'GT.frames', tmp_path / 'LQ.frames'
    gt.mkdir()
    lq.mkdir()
    opt = demo_options(demo_data, base=MULTIGRID_DEMO, datasets__train__io_backend={'type': 'frame_store'},
                       datasets__train__dataroot_gt=str(gt), datasets__train__dataroot_lq=str(lq),
                       datasets__train__scale=4, datasets__train__phase='train')  # as basicsr's parse sets them
    opt.update(is_train=True, dist=False, rank=0, world_size=1)
    message = one_line_error(lambda: preflight(opt))
    assert message.startswith('datasets.train.dataroot_gt: frame store index not found')


def test_builder_refuses_existing_output_or_no_room_writing_nothing(demo_data, stored, tmp_path, monkeypatch):
    target = osp.join(stored, 'train', 'LQ.frames')
    before = tree_digest(target)
    result = run_tool('create_frame_store', 'folder', '--input', osp.join(demo_data, 'train', 'LQ'), '--out', target)
    assert result.returncode == 2 and result.stderr.strip().count('\n') == 0
    assert result.stderr.startswith(f'create_frame_store: error: {target}: already exists; pass --overwrite')
    assert tree_digest(target) == before

    out = tmp_path / 'new' / 'LQ.frames'
    plan = plan_frame_store(str(out), folder_clips(osp.join(demo_data, 'train', 'LQ')))
    monkeypatch.setattr(frame_store.shutil, 'disk_usage', lambda path: shutil._ntuple_diskusage(10**9, 10**9, 1000))
    message = one_line_error(lambda: build_frame_store(plan))
    assert 'MiB needed for the frame store(s)' in message and 'MiB free' in message
    assert not osp.exists(tmp_path / 'new')


def test_default_demo_build_is_unchanged(tmp_path):
    make_demo_dataset(str(tmp_path / 'default'))
    assert tree_digest(tmp_path / 'default') == DEFAULT_DEMO_DIGEST
    make_demo_dataset(str(tmp_path / 'spelled'), size='256x256')
    assert tree_digest(tmp_path / 'spelled') == DEFAULT_DEMO_DIGEST


def test_demo_frames_of_any_width_and_height(tmp_path):
    root = tmp_path / 'wide'
    result = run_tool('make_demo_data', '--out', root, '--size', '96x64', '--train-frames', 3, '--val-frames', 2)
    assert result.returncode == 0, result.stderr
    with open(root / 'meta_info_train.txt') as f:
        assert all(line.split()[1:] == ['3', '(64,96,3)'] for line in f)
    with open(root / 'demo_info.json') as f:
        assert json.load(f)['size'] == [96, 64]
    lq = MultigridPairedVideoDataset(train_dataset_options(str(root), num_frame=3, gt_size=32)).lq_reader
    assert lq.read(os.listdir(root / 'train' / 'LQ')[0], 0).shape == (16, 24, 3)
    bad = run_tool('make_demo_data', '--out', tmp_path / 'bad', '--size', '98x64')
    assert bad.returncode == 2 and 'multiple of 4' in bad.stderr and not osp.exists(tmp_path / 'bad')


class _BurnsCpu:
    """An item costs `CPU_MS_PER_FRAME` ms of CPU per frame of its shape, plus `SLEEP_MS` ms of waiting."""
    CPU_MS_PER_FRAME, SLEEP_MS = 6, 15

    def __len__(self):
        return 10

    def __getitem__(self, item):
        end = time.process_time() + item.num_frame * self.CPU_MS_PER_FRAME / 1000
        while time.process_time() < end:
            pass
        time.sleep(self.SLEEP_MS / 1000)
        return {}


def test_cost_measurement_counts_the_workers_cpu_time():
    shapes = [data_cost.Shape(4, 16, 2), data_cost.Shape(8, 32, 4)]
    rows = data_cost.measure_dataset(_BurnsCpu(), shapes, samples=3, warmup=1)
    assert [(row['lq_size'], row['num_frame'], row['samples']) for row in rows] == [(4, 2, 3), (8, 4, 3)]
    for row, cpu_ms in zip(rows, (12, 24)):
        assert cpu_ms <= row['cpu_ms_per_sample'] < cpu_ms + 5, row  # the burn, not the sleep
        assert row['wall_ms_per_sample'] >= row['cpu_ms_per_sample'] + _BurnsCpu.SLEEP_MS - 1, row


def test_benchmark_tool_reports_every_shape_and_backend(stored, tmp_path):
    out = tmp_path / 'cost.json'
    result = run_tool('benchmark_data', '--data', stored, '--backends', 'disk', 'frame_store', '--samples', 2,
                      '--warmup', 0, '--out', out)
    assert result.returncode == 0, result.stderr
    with open(out) as f:
        results = json.load(f)
    shapes = data_cost.schedule_shapes(load_yaml(MULTIGRID_DEMO))
    assert shapes == [(16, 64, 5), (16, 64, 10), (32, 128, 5), (32, 128, 10)]
    assert [(run['backend'], run['frame_size']) for run in results['runs']] == [('disk', '128x128'),
                                                                                ('frame_store', '128x128')]
    for run in results['runs']:
        assert [(row['lq_size'], row['num_frame']) for row in run['shapes']] == [(s.lq_size, s.num_frame)
                                                                                 for s in shapes]
        assert all(row['cpu_ms_per_sample'] > 0 for row in run['shapes'])
    assert results['target'] is None  # one frame size: nothing to compare
    assert 'frame_store' in result.stdout and 'LR 32 T 10' in result.stdout
