"""Frame-interpolation datasets (VFITupleDataset, VFITestDataset) on every layout, built from the demo clips."""
import logging
import os
import pickle
import random
import shutil
from os import path as osp

import cv2
import numpy as np
import pytest
import torch
from basicsr.utils.registry import DATASET_REGISTRY

from basicsr_multigrid.data.dataset_layouts import folder_clips, vimeo_clips
from basicsr_multigrid.data.vfi_test_dataset import VFITestDataset
from basicsr_multigrid.data.vfi_tuple_dataset import VFITupleDataset
from basicsr_multigrid.data.video_frames import VideoDataError, read_video_meta_info
from basicsr_multigrid.utils.errors import OptionError
from basicsr_multigrid.data.lmdb_builder import build_lmdb
from tests.conftest import run_tool

FRAMES_PER_CLIP = 12  # the demo_data fixture's train clips
NO_AUGMENT = dict(use_hflip=False, use_vflip=False, use_reverse=False)


def demo_clips(demo_data):
    return read_video_meta_info(osp.join(demo_data, 'meta_info_train.txt'))


def demo_frame_path(demo_data, clip, index):
    return osp.join(demo_data, 'train', 'GT', clip, f'{index:08d}.png')


def frame_tensor(path):
    """(3, h, w) float32 RGB in [0, 1], read directly with cv2."""
    image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.
    return torch.from_numpy(image).permute(2, 0, 1)


def video_opt(demo_data, phase='train', **overrides):
    opt = dict(name='demo_vfi', type='VFITupleDataset' if phase == 'train' else 'VFITestDataset', phase=phase,
               layout='video', dataroot=osp.join(demo_data, 'train', 'GT'), io_backend={'type': 'disk'},
               meta_info_file=osp.join(demo_data, 'meta_info_train.txt'))
    if phase == 'train':
        opt.update(gt_size=64, **NO_AUGMENT)
    opt.update(overrides)
    return opt


def one_line(error_info, *fragments):
    message = str(error_info.value)
    assert '\n' not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def copy_frames(sources, folder, names):
    os.makedirs(folder, exist_ok=True)
    for source, name in zip(sources, names):
        shutil.copyfile(source, osp.join(folder, name))


@pytest.fixture
def quintuplet_folders(demo_data, tmp_path):
    """Tuple folders of demo frames t, t+2, t+3, t+4, t+6 (I0, I1, target, I2, I3) named so that name order is
    tuple order; returns their root."""
    root = str(tmp_path / 'quintuplets')
    clips = demo_clips(demo_data)[:2]
    for clip in clips:
        for t in (0, 5):
            sources = [demo_frame_path(demo_data, clip.name, t + k) for k in (0, 2, 3, 4, 6)]
            copy_frames(sources, osp.join(root, f'{clip.name}_{t:02d}'), [f'f{i}.png' for i in range(5)])
    return root


@pytest.fixture
def quintuplets(quintuplet_folders, tmp_path):
    """The quintuplet folders and the LMDB `tools/create_lmdb.py vfi --input` builds from them (run as a user
    runs it, in a process of its own)."""
    out = str(tmp_path / 'quintuplets.lmdb')
    result = run_tool('create_lmdb', 'vfi', '--input', quintuplet_folders, '--out', out, '--workers', '1',
                      '--no-progress')
    assert result.returncode == 0, result.stderr
    return quintuplet_folders, out


def test_registered():
    assert DATASET_REGISTRY.get('VFITupleDataset') is VFITupleDataset
    assert DATASET_REGISTRY.get('VFITestDataset') is VFITestDataset


def test_video_windows_order_and_target(demo_data):
    clips = demo_clips(demo_data)
    dataset = VFITupleDataset(video_opt(demo_data, gt_size=None))
    windows = FRAMES_PER_CLIP - 3 * 2  # t = 0..5 for frame_gap 2 at stride 1
    assert len(dataset) == len(clips) * windows == 54
    # the same windows without a meta file (every sub-folder is a clip)
    assert len(VFITupleDataset(video_opt(demo_data, gt_size=None, meta_info_file=None))) == len(dataset)
    for index in (0, 4, windows + 1, len(dataset) - 1):
        clip, t = clips[index // windows].name, index % windows
        item = dataset[index]
        assert item['lq'].shape == (4, 3, 128, 128) and item['gt'].shape == (3, 128, 128)
        assert item['lq'].dtype == torch.float32 and item['gt'].dtype == torch.float32
        assert torch.equal(item['gt'], frame_tensor(demo_frame_path(demo_data, clip, t + 3)))
        for k in range(4):
            assert torch.equal(item['lq'][k], frame_tensor(demo_frame_path(demo_data, clip, t + 2 * k)))
        assert item['lq_path'] == item['key'] == f'{clip}/{t + 3:08d}'
    # frame_gap 4: inputs t, t+4, t+8 and target t+6 need 13 frames; 12 are too few
    with pytest.raises(VideoDataError) as error:
        VFITupleDataset(video_opt(demo_data, frame_gap=4))
    one_line(error, 'frame_gap', '13')


def test_test_dataset_uses_davis_stride_and_lists_folders(demo_data):
    clips = demo_clips(demo_data)
    dataset = VFITestDataset(video_opt(demo_data, phase='val'))
    assert len(dataset) == len(clips) * 3  # t = 0, 2, 4 (DAVIS: t = 0, 2, ... < N - 6)
    assert dataset.data_info['folder'] == [clip.name for clip in clips for _ in range(3)]
    item = dataset[4]  # clip 1, t = 2
    assert item['folder'] == clips[1].name and item['lq_path'] == f'{clips[1].name}/00000005'
    assert torch.equal(item['gt'], frame_tensor(demo_frame_path(demo_data, clips[1].name, 5)))
    assert torch.equal(item['lq'][3], frame_tensor(demo_frame_path(demo_data, clips[1].name, 8)))
    cropped = VFITestDataset(video_opt(demo_data, phase='val', center_crop=64))[4]
    assert cropped['lq'].shape == (4, 3, 64, 64)
    assert torch.equal(cropped['gt'], item['gt'][:, 32:96, 32:96])
    assert torch.equal(cropped['lq'], item['lq'][:, :, 32:96, 32:96])


def test_video_layout_from_an_lmdb_matches_the_folders(demo_data, tmp_path):
    """The clip LMDB `tools/create_lmdb.py folder` (or `make_demo_dataset(lmdb=True)`) writes; its
    meta_info_clips.txt is the default meta file."""
    lmdb_path = str(tmp_path / 'GT.lmdb')
    build_lmdb(lmdb_path, folder_clips(osp.join(demo_data, 'train', 'GT')), progress=False)
    from_folders = VFITestDataset(video_opt(demo_data, phase='val'))
    from_lmdb = VFITestDataset(video_opt(demo_data, phase='val', dataroot=lmdb_path, meta_info_file=None,
                                         io_backend={'type': 'lmdb'}))
    assert len(from_lmdb) == len(from_folders) == 27
    for index in (0, 13, 26):
        a, b = from_folders[index], from_lmdb[index]
        assert a['lq_path'] == b['lq_path'] and a['folder'] == b['folder']
        assert torch.equal(a['lq'], b['lq']) and torch.equal(a['gt'], b['gt'])


def test_vfitex_style_names_start_at_one(demo_data, tmp_path):
    """VFITex: <seq>/001.png ...; the reference takes t = 1, 3, ... < N - 5 with inputs t, t+2, t+4, t+6."""
    root = str(tmp_path / 'vfitex')
    clip = demo_clips(demo_data)[0].name
    copy_frames([demo_frame_path(demo_data, clip, i) for i in range(12)], osp.join(root, 'seq_4K'),
                [f'{i + 1:03d}.png' for i in range(12)])
    dataset = VFITestDataset(dict(name='tex', phase='val', layout='video', dataroot=root, filename_tmpl='03d',
                                  first_frame=1))
    assert [sample.name for sample in dataset.samples] == ['seq_4K/004', 'seq_4K/006', 'seq_4K/008']
    assert [sample.inputs[0][1] for sample in dataset.samples] == [1, 3, 5]
    item = dataset[2]
    assert item['folder'] == 'seq_4K'
    assert torch.equal(item['gt'], frame_tensor(osp.join(root, 'seq_4K', '008.png')))
    assert torch.equal(item['lq'][3], frame_tensor(osp.join(root, 'seq_4K', '011.png')))  # t = 5: 5, 7, 9, 11


def test_random_crop_is_the_same_window_in_all_frames(demo_data):
    full = VFITupleDataset(video_opt(demo_data, gt_size=None))
    cropped = VFITupleDataset(video_opt(demo_data, gt_size=48))
    random.seed(0)
    for index in (0, 17, 40):
        reference, item = full[index], cropped[index]
        assert item['lq'].shape == (4, 3, 48, 48) and item['gt'].shape == (3, 48, 48)
        positions = [(top, left) for top in range(128 - 48 + 1) for left in range(128 - 48 + 1)
                     if torch.equal(reference['gt'][:, top:top + 48, left:left + 48], item['gt'])]
        assert len(positions) == 1
        top, left = positions[0]
        assert torch.equal(item['lq'], reference['lq'][:, :, top:top + 48, left:left + 48])


def test_flips_and_temporal_reversal_apply_to_all_frames_consistently(demo_data):
    reference = VFITupleDataset(video_opt(demo_data, gt_size=None))[7]
    augmented = VFITupleDataset(video_opt(demo_data, gt_size=None, use_hflip=True, use_vflip=True, use_reverse=True))
    candidates = {}  # the reference under each combination, applied by hand
    for hflip in (False, True):
        for vflip in (False, True):
            for reverse in (False, True):
                lq, gt = reference['lq'], reference['gt']
                if hflip:
                    lq, gt = lq.flip(-1), gt.flip(-1)
                if vflip:
                    lq, gt = lq.flip(-2), gt.flip(-2)
                if reverse:
                    lq = lq.flip(0)  # I3, I2, I1, I0; the target stays
                candidates[hflip, vflip, reverse] = lq, gt
    seen = set()
    for seed in range(48):
        random.seed(seed)
        item = augmented[7]
        matches = [combination for combination, (lq, gt) in candidates.items()
                   if torch.equal(item['lq'], lq) and torch.equal(item['gt'], gt)]
        assert len(matches) == 1, (seed, matches)
        seen.add(matches[0])
    assert len(seen) == 8  # every combination occurs, each applied to all five frames
    # the draws are Python's `random` (BasicSR seeds it per worker): same seed, same item
    random.seed(3)
    first = augmented[7]
    random.seed(3)
    assert torch.equal(first['lq'], augmented[7]['lq'])


def test_quintuplet_folder_and_lmdb_give_identical_tensors(demo_data, quintuplets):
    root, lmdb_path = quintuplets
    folder_set = VFITestDataset(dict(name='q', phase='val', layout='quintuplet', dataroot=root))
    lmdb_set = VFITestDataset(dict(name='q', phase='val', layout='quintuplet', dataroot=lmdb_path,
                                   io_backend={'type': 'lmdb'}))
    assert len(folder_set) == len(lmdb_set) == 4
    for index in range(4):
        a, b = folder_set[index], lmdb_set[index]
        assert a['lq_path'] == b['lq_path'] == a['folder'] == b['folder']
        assert torch.equal(a['lq'], b['lq']) and torch.equal(a['gt'], b['gt'])
    # and the same as the video window they were cut from: t = 5 of the first clip
    clip = demo_clips(demo_data)[0].name
    assert folder_set[1]['lq_path'] == f'{clip}_05'
    window = VFITupleDataset(video_opt(demo_data, gt_size=None))[5]
    assert torch.equal(folder_set[1]['lq'], window['lq']) and torch.equal(folder_set[1]['gt'], window['gt'])
    # training items: same seed, same crop and flips, from either backend
    options = dict(name='q', phase='train', layout='quintuplet', gt_size=64)
    train_folder = VFITupleDataset(dict(options, dataroot=root))
    train_lmdb = VFITupleDataset(dict(options, dataroot=lmdb_path, io_backend={'type': 'lmdb'}))
    for index in range(4):
        random.seed(index)
        a = train_folder[index]
        random.seed(index)
        b = train_lmdb[index]
        assert torch.equal(a['lq'], b['lq']) and torch.equal(a['gt'], b['gt'])


def test_lmdb_dataset_in_dataloader_workers(quintuplets):
    _, lmdb_path = quintuplets
    dataset = VFITupleDataset(dict(name='q', phase='train', layout='quintuplet', dataroot=lmdb_path,
                                   io_backend={'type': 'lmdb'}, gt_size=64))
    pickle.loads(pickle.dumps(dataset))  # spawn-safe: no open LMDB environment in the dataset
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=2)
    batches = list(loader)
    assert len(batches) == 2
    for batch in batches:
        assert batch['lq'].shape == (2, 4, 3, 64, 64) and batch['gt'].shape == (2, 3, 64, 64)
        assert len(batch['lq_path']) == 2


def write_fake_vimeo(demo_data, root):
    clips = demo_clips(demo_data)
    names = {'train': ['00001/0001', '00001/0002'], 'test': ['00002/0001']}
    sequences = osp.join(root, 'vimeo_septuplet', 'sequences')
    for number, name in enumerate(names['train'] + names['test']):
        sources = [demo_frame_path(demo_data, clips[number].name, i) for i in range(7)]
        copy_frames(sources, osp.join(sequences, name), [f'im{i}.png' for i in range(1, 8)])
    for split, listed in names.items():
        with open(osp.join(root, 'vimeo_septuplet', f'sep_{split}list.txt'), 'w') as f:
            f.write('\n'.join(listed) + '\n')
    return names


def test_vimeo_septuplet_on_disk_and_as_septuplet_lmdb(demo_data, tmp_path):
    root = str(tmp_path / 'vimeo90k')
    names = write_fake_vimeo(demo_data, root)
    train = VFITupleDataset(dict(name='vimeo', phase='train', layout='vimeo_septuplet', dataroot=root, gt_size=None,
                                 **NO_AUGMENT))
    test = VFITestDataset(dict(name='vimeo', phase='val', layout='vimeo_septuplet', dataroot=root))
    assert len(train) == 2 and len(test) == 1 and test.data_info['folder'] == names['test']
    sequence = osp.join(root, 'vimeo_septuplet', 'sequences', '00001', '0002')
    item = train[1]
    assert item['lq_path'] == '00001/0002'
    assert torch.equal(item['gt'], frame_tensor(osp.join(sequence, 'im4.png')))
    for k, frame in enumerate(('im1', 'im3', 'im5', 'im7')):
        assert torch.equal(item['lq'][k], frame_tensor(osp.join(sequence, f'{frame}.png')))
    # the 7-frame GT LMDB of `tools/create_lmdb.py vimeo90k` serves the same samples
    lmdb_path = str(tmp_path / 'vimeo90k_train_GT_all.lmdb')
    build_lmdb(lmdb_path, vimeo_clips(root, 'train'), progress=False)
    from_lmdb = VFITupleDataset(dict(name='vimeo', phase='train', layout='vimeo_septuplet', dataroot=lmdb_path,
                                     io_backend={'type': 'lmdb'}, gt_size=None, **NO_AUGMENT))
    assert len(from_lmdb) == 2
    assert torch.equal(from_lmdb[1]['lq'], item['lq']) and torch.equal(from_lmdb[1]['gt'], item['gt'])


def test_ucf101_layout(demo_data, tmp_path):
    root = str(tmp_path / 'ucf101')
    clip = demo_clips(demo_data)[0].name
    for number in (0, 1):
        sources = [demo_frame_path(demo_data, clip, number + k) for k in (0, 2, 4, 6, 3)]
        copy_frames(sources, osp.join(root, str(number)), ['frame0.png', 'frame1.png', 'frame2.png', 'frame3.png',
                                                           'framet.png'])
    dataset = VFITestDataset(dict(name='ucf', phase='val', layout='ucf101', dataroot=root))
    window = VFITestDataset(video_opt(demo_data, phase='val', window_stride=1))[1]  # clip 0, t = 1
    assert len(dataset) == 2 and dataset.data_info['folder'] == ['0', '1']
    item = dataset[1]
    assert item['lq_path'] == '1'
    assert torch.equal(item['lq'], window['lq']) and torch.equal(item['gt'], window['gt'])


def test_snufilm_extends_triplets_and_skips_missing_boundary_frames(demo_data, tmp_path, caplog):
    root = str(tmp_path / 'snufilm')
    clip = demo_clips(demo_data)[0].name
    sequence = 'data/SNU-FILM/test/GOPRO_test/GOPR0384_11_00'
    copy_frames([demo_frame_path(demo_data, clip, i) for i in range(12)], osp.join(root, sequence),
                [f'{i:06d}.png' for i in range(12)])
    triplets = [(2, 3, 4), (8, 9, 10), (4, 5, 6)]  # (8, 9, 10) needs frame 12, which does not exist
    list_file = osp.join(root, 'data', 'SNU-FILM', 'test-easy.txt')
    with open(list_file, 'w') as f:
        for triplet in triplets:
            f.write(' '.join(f'{sequence}/{i:06d}.png' for i in triplet) + '\n')
    with caplog.at_level(logging.INFO, logger='basicsr'):
        dataset = VFITestDataset(dict(name='snu', phase='val', layout='snufilm', dataroot=root,
                                      meta_info_file=list_file))
    assert 'skipped 1 of 3 triplets' in caplog.text
    assert len(dataset) == 2 and dataset.data_info['folder'] == [sequence, sequence]
    assert [dataset[i]['lq_path'] for i in (0, 1)] == [f'{sequence}/000003', f'{sequence}/000005']
    window = VFITestDataset(video_opt(demo_data, phase='val'))[1]  # clip 0, t = 2: inputs 2, 4, 6, 8, target 5
    item = dataset[1]
    assert torch.equal(item['lq'], window['lq']) and torch.equal(item['gt'], window['gt'])


def test_bad_options_and_data_fail_at_construction_with_one_line(demo_data, quintuplet_folders, tmp_path):
    root = quintuplet_folders
    with pytest.raises(OptionError) as error:
        VFITupleDataset(video_opt(demo_data, frame_gap=3))
    one_line(error, 'datasets.train.frame_gap', 'even', '3')
    with pytest.raises(OptionError) as error:
        VFITupleDataset(video_opt(demo_data, use_hlfip=True))
    one_line(error, 'datasets.train.use_hlfip', 'did you mean use_hflip')
    with pytest.raises(OptionError) as error:
        VFITestDataset(dict(name='q', phase='val', layout='quintuplets', dataroot=root))
    one_line(error, 'datasets.val.layout', 'quintuplets', 'did you mean quintuplet?')
    with pytest.raises(OptionError) as error:
        VFITestDataset(dict(name='q', phase='val', layout='quintuplet', dataroot=root, frame_gap=2))
    one_line(error, 'datasets.val.frame_gap', 'not used by layout quintuplet')
    with pytest.raises(VideoDataError) as error:
        VFITupleDataset(video_opt(demo_data, gt_size=256))
    one_line(error, 'datasets.train.gt_size', '256', '128x128')
    with pytest.raises(VideoDataError) as error:  # no meta file: the size comes from a PNG header
        VFITupleDataset(dict(name='q', phase='train', layout='quintuplet', dataroot=root, gt_size=129))
    one_line(error, 'datasets.train.gt_size', '129', '128x128')

    four = str(tmp_path / 'four')
    shutil.copytree(root, four)
    tuple_folder = osp.join(four, sorted(os.listdir(four))[1])
    os.remove(osp.join(tuple_folder, 'f4.png'))
    with pytest.raises(VideoDataError) as error:
        VFITestDataset(dict(name='q', phase='val', layout='quintuplet', dataroot=four))
    one_line(error, tuple_folder, '4 frames')

    video = str(tmp_path / 'video')
    clip = demo_clips(demo_data)[0].name
    shutil.copytree(osp.join(demo_data, 'train', 'GT', clip), osp.join(video, clip))
    os.remove(osp.join(video, clip, '00000007.png'))
    with pytest.raises(VideoDataError) as error:
        VFITestDataset(dict(name='v', phase='val', layout='video', dataroot=video,
                            meta_info_file=osp.join(demo_data, 'meta_info_train.txt')))
    one_line(error, 'missing frame', osp.join(video, clip, '00000007.png'))


def test_frames_of_different_sizes_in_one_tuple(quintuplet_folders, tmp_path):
    root = quintuplet_folders
    mixed = str(tmp_path / 'mixed')
    shutil.copytree(root, mixed)
    tuple_name = sorted(os.listdir(mixed))[0]
    small = osp.join(mixed, tuple_name, 'f3.png')
    cv2.imwrite(small, cv2.imread(small)[:64, :96])
    dataset = VFITestDataset(dict(name='q', phase='val', layout='quintuplet', dataroot=mixed))
    with pytest.raises(VideoDataError) as error:
        dataset[0]
    one_line(error, tuple_name, small, '64x96', '128x128')
