"""Tests for the embedded demo-data generator (small sizes and few frames to stay fast)."""
import hashlib
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from basicsr.metrics import calculate_psnr

from basicsr_multigrid.data.video_frames import read_video_meta_info
from basicsr_multigrid.data import demo_data as dd
from basicsr_multigrid.data.bicubic import imresize_bicubic
from basicsr_multigrid.data.video_folder import bicubic_upscale_psnr

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = os.path.join(REPO, 'tools', 'make_demo_data.py')
TRAIN_N, VAL_N = 4, 3


def _tree_hashes(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, 'rb') as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


@pytest.fixture(scope='module')
def demo128(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('demo') / 'demo128')
    info = dd.make_demo_dataset(root, size=128, train_frames=TRAIN_N, val_frames=VAL_N, seed=0)
    return root, info


def _read_rgb(path):
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def test_layout_meta_and_shapes(demo128):
    root, info = demo128
    with open(os.path.join(root, 'demo_info.json')) as f:
        assert json.load(f) == info
    assert info['scale'] == 4 and info['size'] == 128 and info['seed'] == 0
    assert len(info['train_photos']) >= 6 and len(info['val_photos']) >= 2
    assert not set(info['train_photos']) & set(info['val_photos'])
    assert info['test_photos'] and not set(info['test_photos']) & set(info['train_photos'] + info['val_photos'])
    assert sorted(os.listdir(root)) == ['demo_info.json', 'meta_info_test.txt', 'meta_info_train.txt',
                                        'meta_info_val.txt', 'test', 'train', 'val']
    for split, n in (('train', TRAIN_N), ('val', VAL_N), ('test', VAL_N)):
        meta = read_video_meta_info(os.path.join(root, f'meta_info_{split}.txt'))
        photos = getattr(dd, f'{split.upper()}_PHOTOS')
        assert [c for c, _, _ in meta] == [k for k, v in info['clips'].items() if v['split'] == split]
        assert [info['clips'][c]['photo'] for c, _, _ in meta] == list(photos)
        for clip, count, shape in meta:
            assert '.' not in clip and clip[:3].isdigit() and clip[3] == '_'
            assert count == n and shape == (128, 128, 3)
            for sub in ('GT', 'LQ'):
                assert sorted(os.listdir(os.path.join(root, split, sub, clip))) == [
                    f'{t:08d}.png' for t in range(n)]
            for t in range(n):
                gt = _read_rgb(os.path.join(root, split, 'GT', clip, f'{t:08d}.png'))
                lq = _read_rgb(os.path.join(root, split, 'LQ', clip, f'{t:08d}.png'))
                assert gt.dtype == np.uint8 and gt.shape == (128, 128, 3)
                assert lq.dtype == np.uint8 and lq.shape == (32, 32, 3)
    # LQ is exactly the MATLAB bicubic x4 downscale of the 8-bit GT frame.
    gt = _read_rgb(os.path.join(root, 'val', 'GT', '009_chelsea', '00000001.png'))
    lq = _read_rgb(os.path.join(root, 'val', 'LQ', '009_chelsea', '00000001.png'))
    assert np.array_equal(lq, np.clip(np.rint(imresize_bicubic(gt / 255.0, 0.25) * 255), 0, 255))


def test_motion_is_real_and_subpixel(demo128):
    root, info = demo128
    win = cv2.createHanningWindow((128, 128), cv2.CV_64F)
    for clip, c in info['clips'].items():
        if c['split'] == 'test':
            continue  # test_test_clips_move_faster_and_rotate_more_than_training
        n = TRAIN_N if c['split'] == 'train' else VAL_N
        frames = [cv2.imread(os.path.join(root, c['split'], 'GT', clip, f'{t:08d}.png'), cv2.IMREAD_GRAYSCALE)
                  .astype(np.float64) for t in range(n)]
        vel, acc = np.array(c['motion']['velocity_px']), np.array(c['motion']['accel_px'])
        for t in range(n - 1):
            assert not np.array_equal(frames[t], frames[t + 1]), clip
            (dx, dy), _ = cv2.phaseCorrelate(frames[t], frames[t + 1], win)
            assert 0.2 < np.hypot(dx, dy) < 4, (clip, t, dx, dy)
            # The window moves by +velocity, so the content moves by about -velocity (zoom and rotation
            # about the window centre perturb the estimate a little).
            expected = -(vel + acc * (t + 0.5))
            assert np.hypot(dx - expected[0], dy - expected[1]) < 1.2, (clip, t, dx, dy, expected)


def test_test_clips_move_faster_and_rotate_more_than_training(demo128):
    root, info = demo128
    motions = {split: [c['motion'] for c in info['clips'].values() if c['split'] == split]
               for split in ('train', 'test')}
    speed = {split: [np.hypot(*m['velocity_px']) for m in ms] for split, ms in motions.items()}
    rotation = {split: [abs(m['rotation_deg_total']) for m in ms] for split, ms in motions.items()}
    assert min(speed['test']) > max(speed['train']) and min(rotation['test']) > max(rotation['train'])
    for clip in (c for c, v in info['clips'].items() if v['split'] == 'test'):
        first, last = (_read_rgb(os.path.join(root, 'test', 'GT', clip, f'{t:08d}.png')) for t in (0, VAL_N - 1))
        assert np.abs(first.astype(int) - last).mean() > 5  # the frames really move
    assert 20 < info['bicubic_test_psnr'] < 40


def test_deterministic_and_seed_dependent(tmp_path):
    kw = dict(size=64, train_frames=3, val_frames=2)
    dd.make_demo_dataset(str(tmp_path / 'a'), seed=0, **kw)
    dd.make_demo_dataset(str(tmp_path / 'b'), seed=0, **kw)
    dd.make_demo_dataset(str(tmp_path / 'c'), seed=1, **kw)
    a, b, c = (_tree_hashes(str(tmp_path / x)) for x in 'abc')
    assert a == b
    assert a.keys() == c.keys() and a != c
    assert sorted(os.listdir(tmp_path)) == ['a', 'b', 'c']  # no temp/leftover siblings


def test_imresize_matches_basicsr_matlab_imresize():
    import torchvision.transforms.functional as F
    try:
        import torchvision.transforms.functional_tensor  # noqa: F401
    except ModuleNotFoundError:  # basicsr 1.4.2 needs this module, gone from recent torchvision
        import types
        m = types.ModuleType('torchvision.transforms.functional_tensor')
        m.rgb_to_grayscale = F.rgb_to_grayscale
        sys.modules[m.__name__] = m
    from basicsr.utils.matlab_functions import imresize

    rng = np.random.default_rng(0)
    for shape, scale in (((64, 64, 3), 0.25), ((67, 45, 3), 0.25), ((20, 17, 3), 2.0)):
        img = rng.random(shape)
        ours, ref = imresize_bicubic(img, scale), imresize(img, scale)
        assert ours.shape == ref.shape
        ours8 = np.clip(np.rint(ours * 255), 0, 255).astype(np.int64)
        ref8 = np.clip(np.rint(ref * 255), 0, 255).astype(np.int64)
        assert np.abs(ours8 - ref8).max() <= 1


def test_imresize_close_to_area_downscale():
    img = dd._load_photo('astronaut')
    ours = np.clip(np.rint(imresize_bicubic(img / 255.0, 0.25) * 255), 0, 255).astype(np.uint8)
    area = cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA)
    assert calculate_psnr(ours, area, crop_border=0) > 35


def test_bicubic_upscale_psnr_plausible(demo128):
    root, info = demo128
    psnr = bicubic_upscale_psnr(root, 'val')
    assert 20 < psnr < 40
    assert info['bicubic_val_psnr'] == pytest.approx(psnr, abs=1e-3)
    assert 20 < bicubic_upscale_psnr(root, 'train') < 40


def test_read_meta_info_reports_malformed_line(tmp_path):
    p = tmp_path / 'meta.txt'
    p.write_text('000_a 20 (256,256,3)\n\n00001/0001 7 (256, 448, 3)\n')
    assert read_video_meta_info(str(p)) == [('000_a', 20, (256, 256, 3)), ('00001/0001', 7, (256, 448, 3))]
    p.write_text('000_a 20 (256,256,3)\n001_b twenty (256,256,3)\n')
    with pytest.raises(ValueError, match=r'meta\.txt:2: ') as e:
        read_video_meta_info(str(p))
    assert '\n' not in str(e.value)


def test_cli_refuses_existing_dir_without_overwrite(tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    keep = out / 'keep.txt'
    keep.write_text('precious')
    r = subprocess.run([sys.executable, CLI, '--out', str(out), '--size', '64'], capture_output=True,
                       text=True, cwd=str(tmp_path))
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0], r.stderr
    assert keep.read_text() == 'precious' and os.listdir(out) == ['keep.txt']
    assert sorted(os.listdir(tmp_path)) == ['out']


def test_overwrite_replaces_only_a_demo_dataset(tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'keep.txt').write_text('precious')
    # --overwrite never deletes a directory that is not a previous demo set.
    with pytest.raises(FileExistsError, match='not a demo dataset'):
        dd.make_demo_dataset(str(out), size=64, train_frames=2, val_frames=2, overwrite=True)
    assert os.listdir(out) == ['keep.txt']
    (out / 'keep.txt').unlink()
    dd.make_demo_dataset(str(out), size=64, train_frames=2, val_frames=2, seed=0)  # empty dir: fine
    with pytest.raises(FileExistsError, match='not empty'):
        dd.make_demo_dataset(str(out), size=64, train_frames=2, val_frames=2)
    info = dd.make_demo_dataset(str(out), size=64, train_frames=3, val_frames=2, seed=1, overwrite=True)
    assert info['seed'] == 1 and read_video_meta_info(str(out / 'meta_info_train.txt'))[0][1] == 3
    assert sorted(os.listdir(tmp_path)) == ['out']  # temp and old copies cleaned up
