"""Running a VSR network on a user's video: the chunk fade, sliding windows and tiles recomputed by hand with
networks whose output is known, and the tool end to end on an mp4 it makes (frames, size, rate, audio), a frame
folder and bad input."""
import os
import sys
from os import path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from basicsr.archs.basicvsr_arch import BasicVSR
from basicsr.data.data_util import generate_frame_indices

from basicsr_multigrid.inference import compare_frames, upscale_video
from basicsr_multigrid.inference.networks import experiment_files
from basicsr_multigrid.inference.vsr import FrameUpscaler
from tests.conftest import REPO_ROOT, TINY_VSR_NETWORKS, decoded, make_video, random_frames

pytestmark = pytest.mark.usefixtures('one_torch_thread')


def as_float(frames):
    return [frame.astype(np.float64) / 255 for frame in frames]


def upsample(image, scale=2):
    return image.repeat(scale, axis=0).repeat(scale, axis=1)


class ClipMean(torch.nn.Module):
    """A 'recurrent' network whose every output frame is the mean of the clip it was given (nearest x2): what
    a chunk sees decides its output, so the chunk fade can be computed by hand."""

    def forward(self, x):
        mean = x.mean(dim=1, keepdim=True).expand_as(x)
        return F.interpolate(mean.flatten(0, 1), scale_factor=2, mode='nearest').view(*x.shape[:3], *(
            2 * s for s in x.shape[3:]))


class WeightedWindow(torch.nn.Module):
    """A 'sliding-window' network: a weighted sum of its window with distinct weights (nearest x2)."""

    def __init__(self, size):
        super().__init__()
        self.register_buffer('weights', torch.arange(1.0, size + 1) / (size * (size + 1) / 2))

    def forward(self, x):
        mixed = (x * self.weights.view(1, -1, 1, 1, 1)).sum(dim=1)
        return F.interpolate(mixed, scale_factor=2, mode='nearest')


def test_chunks_share_overlap_frames_and_fade_linearly_from_one_chunk_to_the_next():
    frames = random_frames(7)
    upscaler = FrameUpscaler(ClipMean(), 2, 'cpu', chunk=4, overlap=2)
    got = [frame.astype(np.float64) for frame in upscaler.upscale(frames)]
    x = as_float(frames)
    # chunks [0, 4), [2, 6), then [4, 7) reaching back one frame to have 4 frames: [3, 7), frame 3 not used
    first, second, third = (upsample(np.mean(x[a:b], axis=0)) for a, b in ((0, 4), (2, 6), (3, 7)))
    expected = [first, first,
                first * 2 / 3 + second / 3, first / 3 + second * 2 / 3,  # frames 2, 3: chunk 2 fades in
                second * 2 / 3 + third / 3, second / 3 + third * 2 / 3,  # frames 4, 5: chunk 3 fades in
                third]
    assert len(got) == 7
    for index, (out, want) in enumerate(zip(got, expected)):
        assert np.abs(out - np.round(want * 255)).max() <= 1, index  # uint8 rounding of the faded float


@pytest.mark.parametrize('count, chunk, overlap', [(8, 4, 0), (8, 8, 3), (9, 4, 3), (5, 10, 2)])
def test_every_frame_comes_out_once_in_order(count, chunk, overlap):
    frames = random_frames(count)
    got = list(FrameUpscaler(ClipMean(), 2, 'cpu', chunk=chunk, overlap=overlap).upscale(frames))
    assert len(got) == count
    if chunk >= count:  # one chunk: exactly the whole-clip result
        whole = list(FrameUpscaler(ClipMean(), 2, 'cpu').upscale(frames))
        assert all(np.array_equal(a, b) for a, b in zip(got, whole))


@pytest.mark.parametrize('count', [1, 4, 9])
def test_sliding_windows_are_basicsrs_reflection_circle_windows(count):
    window = 5
    frames = random_frames(count, seed=count)
    got = list(FrameUpscaler(WeightedWindow(window), 2, 'cpu', window=window).upscale(frames))
    x = as_float(frames)
    weights = np.arange(1.0, window + 1) / (window * (window + 1) / 2)
    assert len(got) == count
    for centre, out in enumerate(got):
        indices = [min(max(i, 0), count - 1)
                   for i in generate_frame_indices(centre, count, window, padding='reflection_circle')]
        want = upsample(sum(w * x[i] for w, i in zip(weights, indices)))
        assert np.abs(out.astype(np.float64) - np.round(want * 255)).max() <= 1, centre


def pixel_shuffle_net():
    """A 3x3 conv then x2 pixel shuffle: each output pixel sees one LR pixel around it."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 12, 3, padding=1)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv

        def forward(self, x):
            return torch.sigmoid(F.pixel_shuffle(self.conv(x.flatten(0, 1)), 2)).view(*x.shape[:3], *(
                2 * s for s in x.shape[3:]))
    return Net()


def test_tiles_with_enough_context_equal_the_whole_frame():
    frames = random_frames(3, height=24, width=36)
    whole = list(FrameUpscaler(pixel_shuffle_net(), 2, 'cpu').upscale(frames))
    tiled = list(FrameUpscaler(pixel_shuffle_net(), 2, 'cpu', tile=8, tile_overlap=1).upscale(frames))
    blind = list(FrameUpscaler(pixel_shuffle_net(), 2, 'cpu', tile=8, tile_overlap=0).upscale(frames))
    assert all(np.array_equal(a, b) for a, b in zip(whole, tiled))
    assert not all(np.array_equal(a, b) for a, b in zip(whole, blind))  # without context the tile seams show


# ------------------------------------------------------------------------------------------------ the tool
@pytest.fixture
def tiny_vsr(tmp_path):
    """An option file with a tiny BasicVSR and its weights, saved as a BasicSR training run saves them."""
    network_opt = {'type': 'BasicVSR', 'num_feat': 8, 'num_block': 1, 'spynet_path': None}
    opt = {'name': 'tiny', 'scale': 4, 'network_g': network_opt}
    opt_path = str(tmp_path / 'tiny.yml')
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f)
    torch.manual_seed(0)
    network = BasicVSR(num_feat=8, num_block=1, spynet_path=None)
    weights = str(tmp_path / 'net_g_10.pth')
    torch.save({'params': network.state_dict()}, weights)
    return opt_path, weights, network


def test_video_in_video_out_at_four_times_the_size_same_rate_audio_copied(tmp_path, tiny_vsr, capsys):
    opt_path, weights, network = tiny_vsr
    frames = random_frames(9, height=24, width=32)
    make_video(str(tmp_path / 'in.mp4'), frames)
    out = str(tmp_path / 'out.mp4')
    assert upscale_video.main(['-opt', opt_path, '--weights', weights, '--input', str(tmp_path / 'in.mp4'),
                               '--output', out, '--chunk', '4', '--overlap', '1', '--codec', 'h264',
                               '--compare', str(tmp_path / 'panel.png')]) == 0
    got, rate, audio = decoded(out)
    assert len(got) == 9 and got[0].shape == (96, 128, 3) and rate == 10 and audio == ['aac']
    assert osp.getsize(tmp_path / 'panel.png') > 0
    assert [n for n in os.listdir(tmp_path) if 'partial' in n] == []
    assert '(params)' in capsys.readouterr().out


def test_frame_folder_to_png_folder_matches_the_network_run_by_hand(tmp_path, tiny_vsr):
    opt_path, weights, network = tiny_vsr
    frames = random_frames(5, height=16, width=16, seed=3)
    os.makedirs(tmp_path / 'frames')
    for i, frame in enumerate(frames):
        import cv2
        cv2.imwrite(str(tmp_path / 'frames' / f'{i:04d}.png'), frame[..., ::-1])
    assert upscale_video.main(['-opt', opt_path, '--weights', weights, '--input', str(tmp_path / 'frames'),
                               '--output', str(tmp_path / 'out')]) == 0
    names = sorted(os.listdir(tmp_path / 'out'))
    assert names == [f'{i:08d}.png' for i in range(5)]
    with torch.no_grad():
        clip = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div(255)[None]
        expected = network.eval()(clip).clamp(0, 1)[0, 2].permute(1, 2, 0).numpy()
    import cv2
    written = cv2.imread(str(tmp_path / 'out' / names[2]))[..., ::-1]
    assert np.abs(written.astype(np.float64) - np.round(expected * 255)).max() <= 1


def test_experiment_folder_takes_its_option_file_and_newest_weights(tmp_path, tiny_vsr):
    opt_path, weights, _ = tiny_vsr
    experiment = tmp_path / 'experiments' / 'tiny'
    os.makedirs(experiment / 'models')
    os.replace(opt_path, experiment / 'tiny.yml')
    os.replace(weights, experiment / 'models' / 'net_g_10.pth')
    torch.save({'params': {'broken': torch.zeros(1)}}, experiment / 'models' / 'net_g_5.pth')  # older: not used
    expected = (str(experiment / 'tiny.yml'), str(experiment / 'models' / 'net_g_10.pth'))
    assert experiment_files(str(experiment)) == expected


@pytest.mark.parametrize('change, expected', [
    (lambda a, p: a.__setitem__(a.index('--weights') + 1, str(p / 'missing.pth')), '--weights: file not found'),
    (lambda a, p: a.__setitem__(a.index('--input') + 1, str(p / 'broken.mp4')), 'cannot open video'),
    (lambda a, p: a.extend(['--chunk', '4', '--overlap', '4']), '--overlap: must be at least 0 and less than'),
    (lambda a, p: a.extend(['--precision', 'fp16', '--device', 'cpu']), '--precision: fp16 needs a CUDA device'),
    (lambda a, p: a.__setitem__(a.index('--output') + 1, str(p / 'exists.mp4')), 'exists; pass --overwrite'),
    (lambda a, p: a.__setitem__(a.index('--output') + 1, str(p / 'out.avi')), 'write h264 to .mp4, .mov or .mkv'),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, tiny_vsr, capsys, change, expected):
    opt_path, weights, _ = tiny_vsr
    make_video(str(tmp_path / 'in.mp4'), random_frames(3), audio=False)
    (tmp_path / 'broken.mp4').write_bytes(b'not a video at all')
    (tmp_path / 'exists.mp4').write_bytes(b'keep me')
    args = ['-opt', opt_path, '--weights', weights, '--input', str(tmp_path / 'in.mp4'), '--output',
            str(tmp_path / 'out.mp4')]
    change(args, tmp_path)
    before = sorted(os.listdir(tmp_path))
    assert upscale_video.main(args) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith('error: ') and expected in message, message
    assert sorted(os.listdir(tmp_path)) == before and (tmp_path / 'exists.mp4').read_bytes() == b'keep me'


def test_compare_frames_reports_psnr_against_ground_truth(tmp_path, capsys):
    import cv2
    gt = random_frames(1, height=64, width=64)[0]
    lq = cv2.resize(gt, (16, 16), interpolation=cv2.INTER_AREA)
    for name, image in (('gt', gt), ('lq', lq), ('model', gt)):
        cv2.imwrite(str(tmp_path / f'{name}.png'), image[..., ::-1])
    assert compare_frames.main(['--lq', str(tmp_path / 'lq.png'), '--output', f'mine={tmp_path / "model.png"}',
                                '--gt', str(tmp_path / 'gt.png'), '--out', str(tmp_path / 'panel.png')]) == 0
    assert 'mine inf dB' in capsys.readouterr().out  # the 'model' here is the ground truth itself
    panel = cv2.imread(str(tmp_path / 'panel.png'))
    assert panel.shape == (22 + 64, 3 * 64 + 2 * 4, 3)  # label row over three 64 px tiles and two separators


@pytest.mark.slow
def test_test_py_without_ground_truth_saves_the_upscaled_frames_of_a_video_and_of_frame_folders(tmp_path, tiny_vsr):
    import subprocess

    import cv2
    opt_path, weights, network = tiny_vsr
    frames = random_frames(4, height=16, width=24, seed=5)
    os.makedirs(tmp_path / 'inputs' / 'stills')
    make_video(str(tmp_path / 'inputs' / 'shot.mp4'), frames, audio=False)
    for i, frame in enumerate(frames[:3]):
        cv2.imwrite(str(tmp_path / 'inputs' / 'stills' / f'img_{i}.png'), frame[..., ::-1])
    with open(opt_path) as f:
        network_opt = yaml.safe_load(f)['network_g']
    test_opt = {'name': 'footage', 'model_type': 'MultigridVideoRecurrentModel', 'scale': 4, 'num_gpu': 0,
                'datasets': {'test_1': {'name': 'mine', 'type': 'PairedVideoTestDataset',
                                        'dataroot_lq': str(tmp_path / 'inputs')}},
                'network_g': network_opt, 'path': {'pretrain_network_g': weights, 'param_key_g': 'auto'},
                'val': {'save_img': True, 'metrics': None}}
    test_opt_path = str(tmp_path / 'test.yml')
    with open(test_opt_path, 'w') as f:
        yaml.safe_dump(test_opt, f)
    code = ('import sys; from basicsr_multigrid.training.cli import test_pipeline; '
            'test_pipeline(sys.argv[1], argv=["test.py", "-opt", sys.argv[2]])')
    result = subprocess.run([sys.executable, '-c', code, str(tmp_path), test_opt_path], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
                            env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert result.returncode == 0, result.stdout[-3000:]
    assert 'mine: no ground truth; 2 clips upscaled' in result.stdout
    out = tmp_path / 'results' / 'footage' / 'visualization' / 'mine'
    assert sorted(os.listdir(out / 'shot')) == [f'{i:08d}_footage.png' for i in range(4)]
    assert sorted(os.listdir(out / 'stills')) == [f'{i:08d}_footage.png' for i in range(3)]
    with torch.no_grad():
        clip = torch.from_numpy(np.stack(frames[:3])).permute(0, 3, 1, 2).float().div(255)[None]
        expected = network.eval()(clip).clamp(0, 1)[0, 1].permute(1, 2, 0).numpy()
    written = cv2.imread(str(out / 'stills' / '00000001_footage.png'))[..., ::-1]
    assert np.abs(written.astype(np.float64) - np.round(expected * 255)).max() <= 1


@pytest.mark.parametrize('arch', ['IconVSR', 'BasicVSRPlusPlus', 'EDVR'])
def test_the_registrys_vsr_archs_upscale_a_clip_in_chunks_or_windows(arch):
    """Every shipped VSR arch through the tool's engine: 7 odd-sized frames in, 7 frames x4 out."""
    from basicsr.archs import build_network
    torch.manual_seed(0)
    network = build_network({'type': arch, **TINY_VSR_NETWORKS[arch],
                             **({'spynet_path': None} if arch != 'EDVR' else {})})
    window = TINY_VSR_NETWORKS[arch].get('num_frame')
    upscaler = FrameUpscaler(network, 4, 'cpu', window=window, chunk=None if window else 5, overlap=2)
    got = list(upscaler.upscale(random_frames(7, height=30, width=34)))
    assert len(got) == 7 and all(frame.shape == (120, 136, 3) for frame in got)
