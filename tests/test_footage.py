"""tools/make_video_dataset.py on small mp4s made here with PyAV: scene cuts split clips, whole videos go to one
split, frames are cropped to the scale, LQ frames are the bicubic downscale; bad input is one line."""
import argparse
import json
import os
from os import path as osp

import av
import cv2
import numpy as np
import pytest
from skimage import data as photos

from basicsr_multigrid.data.bicubic import bicubic_lq
from basicsr_multigrid.data.footage import FootageError, make_video_dataset
from basicsr_multigrid.data.video_frames import read_video_meta_info
from basicsr_multigrid.benchmarks import multigrid
from basicsr_multigrid.benchmarks.summaries import bicubic_psnrs
from tests.conftest import demo_options, recorded, run_tool, run_training, tree_digest, write_options

HEIGHT, WIDTH = 48, 70  # 70 is not divisible by 4: frames are cropped to 68


def pan(photo, frames, step=2):
    """A camera pan over a photo: `frames` windows of HEIGHT x WIDTH moving right by `step` px."""
    photo = photo if photo.ndim == 3 else np.repeat(photo[:, :, None], 3, axis=2)
    return [np.ascontiguousarray(photo[40:40 + HEIGHT, 30 + step * t:30 + step * t + WIDTH, :3]) for t in range(frames)]


def write_video(path, frames):
    with av.open(str(path), 'w') as container:
        stream = container.add_stream('mpeg4', rate=25)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, 'yuv420p'
        stream.options = {'qscale': '1'}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
        container.mux(stream.encode())
    return str(path)


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp('videos')
    grey, colour = photos.camera(), photos.coffee()
    return [write_video(folder / 'a_two_shots.mp4', pan(grey, 12) + pan(colour, 9)),
            write_video(folder / 'b.mp4', pan(photos.astronaut(), 12)),
            write_video(folder / 'c.mp4', pan(photos.chelsea(), 12))]


def read_png(path):
    return cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_clips_never_cross_a_scene_cut_and_splits_take_whole_videos(videos, tmp_path):
    messages = []
    info = make_video_dataset(videos, tmp_path / 'mine', clip_len=5, val_clips=1, test_clips=1, log=messages.append)
    out = str(tmp_path / 'mine')
    assert info['videos']['a_two_shots.mp4']['shots'] == 2 and info['videos']['b.mp4']['shots'] == 1
    # a: 12 grey frames -> 2 clips (2 dropped), then 9 colour frames -> 1 clip; the cut starts a new clip
    assert info['videos']['a_two_shots.mp4']['clips'] == ['a_two_shots_0000', 'a_two_shots_0001', 'a_two_shots_0002']
    assert {v: d['split'] for v, d in info['videos'].items()} == {'a_two_shots.mp4': 'train', 'b.mp4': 'val',
                                                                  'c.mp4': 'test'}
    assert info['clips'] == {'train': 3, 'val': 2, 'test': 2}
    for split in ('train', 'val', 'test'):
        clips = read_video_meta_info(osp.join(out, f'meta_info_{split}.txt'))
        assert all(c.num_frames == 5 and c.shape == (48, 68, 3) for c in clips)
        assert sorted(os.listdir(osp.join(out, split, 'GT'))) == sorted(c.name for c in clips)
    saturation = []
    for clip in info['videos']['a_two_shots.mp4']['clips']:
        frames = [read_png(osp.join(out, 'train', 'GT', clip, f'{t:08d}.png')).astype(float) for t in range(5)]
        saturation.append(max(np.abs(f - f.mean(axis=2, keepdims=True)).mean() for f in frames))
    assert saturation[0] < 3 and saturation[1] < 3 and saturation[2] > 10  # grey shot, grey shot, colour shot
    gt = read_png(osp.join(out, 'test', 'GT', 'c_0001', '00000003.png'))
    assert np.array_equal(read_png(osp.join(out, 'test', 'LQ', 'c_0001', '00000003.png')), bicubic_lq(gt, 4))
    assert any('not divisible by scale 4; cropped to 48x68' in m for m in messages)
    assert json.load(open(osp.join(out, 'dataset_info.json')))['bicubic_psnr'].keys() == {'train', 'val', 'test'}
    assert not [name for name in os.listdir(tmp_path) if name.startswith('.')]  # no temporary folder left


@pytest.mark.slow
def test_command_line_and_bad_input_are_one_line_errors(videos, tmp_path):
    out = str(tmp_path / 'out')
    result = run_tool('make_video_dataset', '--input', *videos, '--out', out, '--clip-len', '6', '--val-clips', '1',
                      '--test-clips', '1')
    assert result.returncode == 0 and 'clips of 6 frames' in result.stdout, result.stderr
    before = tree_digest(out)
    garbage = tmp_path / 'broken.mp4'
    garbage.write_bytes(b'not a video at all' * 100)
    cases = [([*videos, '--out', out], 'exists and is not empty (use --overwrite'),
             ([str(garbage), *videos, '--out', out, '--overwrite'], f'{garbage}: cannot decode video'),
             ([*videos, '--out', out, '--overwrite', '--clip-len', '50'], 'no shot has 50 frames'),
             ([videos[0], '--out', out, '--overwrite', '--clip-len', '6'], 'not enough for 2 val and 2 test clips'),
             ([str(tmp_path / 'nowhere'), '--out', out], 'no such file or folder'),
             ([videos[1], str(tmp_path / 'b.mp4'), '--out', out, '--overwrite'], 'two videos would give clips')]
    (tmp_path / 'b.mp4').write_bytes(open(videos[1], 'rb').read())
    for arguments, expected in cases:
        result = run_tool('make_video_dataset', '--input', *arguments)
        err = result.stderr
        assert result.returncode == 2
        assert err.startswith('error: ') and err.count('\n') == 1 and expected in err, err
        assert tree_digest(out) == before  # the earlier dataset is untouched


def test_a_folder_is_searched_for_videos(videos, tmp_path):
    info = make_video_dataset([osp.dirname(videos[0])], tmp_path / 'all', clip_len=12, val_clips=1, test_clips=1,
                              log=lambda message: None)
    assert info['clips'] == {'train': 1, 'val': 1, 'test': 1}  # a's colour shot (9 frames) is too short
    with pytest.raises(FootageError, match='no video files'):
        make_video_dataset([str(tmp_path / 'all' / 'train')], tmp_path / 'none')


def test_benchmark_data_option_points_every_run_at_the_folder(videos, tmp_path):
    make_video_dataset(videos, tmp_path / 'mine', clip_len=5, val_clips=1, test_clips=1, log=lambda message: None)
    args = argparse.Namespace(preset='cpu-small', baseline=None, multigrid=None, largebatch=None, total_iter=None,
                              val_points=None, data=str(tmp_path / 'mine'), precision=[], channels_last=False)
    runs, _ = multigrid.build_runs(args)
    for _, opt in runs:
        assert opt['datasets']['train']['meta_info_file'] == str(tmp_path / 'mine' / 'meta_info_train.txt')
        assert opt['datasets']['val']['dataroot_lq'] == str(tmp_path / 'mine' / 'val' / 'LQ')
    assert bicubic_psnrs(runs[0][1]) == json.load(open(tmp_path / 'mine' / 'dataset_info.json'))['bicubic_psnr']


@pytest.mark.slow
def test_a_model_trains_and_validates_on_a_footage_folder(videos, tmp_path):
    make_video_dataset(videos, tmp_path / 'mine', clip_len=6, val_clips=1, test_clips=1, log=lambda message: None)
    opt = demo_options(str(tmp_path / 'mine'), name='footage', network_g__num_feat=4, network_g__num_block=1,
                       datasets__train__num_frame=4, datasets__train__gt_size=32, datasets__train__batch_size_per_gpu=2,
                       datasets__train__num_worker_per_gpu=0, train__total_iter=4, train__scheduler__periods=[4],
                       val__val_freq=4, logger__print_freq=1, logger__save_checkpoint_freq=4)
    run_training(tmp_path, write_options(opt, tmp_path))
    validations = recorded(tmp_path, 'footage').validations
    assert [v['iter'] for v in validations] == [4] and all(15 < v['psnr'] < 50 for v in validations)
