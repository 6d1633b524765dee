"""Frame interpolation of a user's video: the middle frames, edge replication and recursive x4 recomputed by hand
with a network whose output is known, and the tool end to end on an mp4 with an ST-MFNet Mini checkpoint in the
official ST-MFNet layout."""
import os

import numpy as np
import pytest
import torch
import yaml

from basicsr_multigrid.archs.stmfnet_mini_arch import STMFNetMini
from basicsr_multigrid.inference import interpolate_video
from basicsr_multigrid.inference.vfi import FrameInterpolator
from tests.conftest import TINY_DISTINCT_WIDTHS, decoded, make_video, random_frames

pytestmark = pytest.mark.usefixtures('one_torch_thread')
WEIGHTS = (0.1, 0.4, 0.3, 0.2)


class WeightedFour(torch.nn.Module):
    """A 'frame-interpolation network': a weighted sum of its four frames with distinct weights."""

    def forward(self, clip):
        return sum(w * clip[:, i] for i, w in enumerate(WEIGHTS))


def doubled_by_hand(frames):
    padded = [frames[0]] + frames + [frames[-1]]  # edge replication
    out = []
    for k in range(len(frames) - 1):
        out += [frames[k], sum(w * f for w, f in zip(WEIGHTS, padded[k:k + 4]))]
    return out + [frames[-1]]


@pytest.mark.parametrize('count, factor', [(5, 2), (4, 4), (3, 8), (2, 2), (1, 4)])
def test_middle_frames_edge_replication_and_recursion(count, factor):
    frames = random_frames(count, seed=count)
    got = list(FrameInterpolator(WeightedFour(), 'cpu', factor=factor).interpolate(frames))
    expected = [f.astype(np.float64) / 255 for f in frames]
    for _ in range(int(np.log2(factor))):
        expected = doubled_by_hand(expected)
    assert len(got) == factor * (count - 1) + 1 == len(expected)
    for index, (out, want) in enumerate(zip(got, expected)):
        assert np.abs(out.astype(np.float64) - np.round(np.clip(want, 0, 1) * 255)).max() <= 1, index


def test_video_at_twice_the_frame_rate_with_an_official_layout_checkpoint(tmp_path):
    torch.manual_seed(0)
    network = STMFNetMini(**{**TINY_DISTINCT_WIDTHS, 'pad_multiple': 16})
    weights = str(tmp_path / 'stmfnet_mini.pth')
    torch.save({'state_dict': {f'module.{k}': v for k, v in network.state_dict().items()}}, weights)
    opt_path = str(tmp_path / 'mini.yml')
    with open(opt_path, 'w') as f:
        yaml.safe_dump({'name': 'mini', 'network_g': {'type': 'STMFNetMini', **TINY_DISTINCT_WIDTHS,
                                                      'pad_multiple': 16}}, f)
    frames = random_frames(4, height=32, width=48)
    make_video(str(tmp_path / 'in.mp4'), frames, fps=12)
    out = str(tmp_path / 'out.mkv')
    assert interpolate_video.main(['-opt', opt_path, '--weights', weights, '--input', str(tmp_path / 'in.mp4'),
                                   '--output', out, '--codec', 'ffv1']) == 0
    got, rate, audio = decoded(out)
    assert len(got) == 7 and got[0].shape == (32, 48, 3) and rate == 24 and audio == ['aac']
    inputs, _, _ = decoded(str(tmp_path / 'in.mp4'))
    assert np.array_equal(got[2], inputs[1])  # lossless FFV1: the input frames pass through untouched
    with torch.no_grad():
        clip = torch.from_numpy(np.stack([inputs[0], inputs[0], inputs[1], inputs[2]])).permute(0, 3, 1, 2)
        expected = network.eval()(clip.float().div(255)[None]).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    assert np.abs(got[1].astype(np.float64) - np.round(expected * 255)).max() <= 1
    assert [n for n in os.listdir(tmp_path) if 'partial' in n] == []


def test_bad_factor_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as stopped:
        interpolate_video.main(['-opt', 'x.yml', '--input', 'a', '--output', 'b', '--factor', '3'])
    assert stopped.value.code == 2 and 'invalid choice: 3' in capsys.readouterr().err


class Samples(torch.utils.data.Dataset):
    """VFI test items of three sequences with 1, 2 and 3 samples (DAVIS-like unequal lengths)."""

    def __init__(self):
        self.opt = {'name': 'seqs'}
        self.data_info = {'folder': ['a', 'b', 'b', 'c', 'c', 'c']}
        generator = torch.Generator().manual_seed(0)
        self.items = [(torch.rand(4, 3, 16, 16, generator=generator), torch.rand(3, 16, 16, generator=generator))
                      for _ in self.data_info['folder']]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        lq, gt = self.items[index]
        return {'lq': lq, 'gt': gt, 'lq_path': f'sample{index}', 'folder': self.data_info['folder'][index]}


def test_validation_reports_the_mean_over_sequences_of_the_sequence_means():
    from basicsr.metrics import calculate_psnr
    from basicsr.models import build_model
    from basicsr.utils import tensor2img
    torch.manual_seed(0)
    network_opt = {'type': 'STMFNetMini', **TINY_DISTINCT_WIDTHS, 'pad_multiple': 16}
    opt = {'name': 'vfi', 'model_type': 'FrameInterpolationModel', 'scale': 1, 'num_gpu': 0, 'is_train': False,
           'dist': False, 'rank': 0, 'world_size': 1, 'network_g': network_opt, 'path': {'pretrain_network_g': None},
           'val': {'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False}}}}
    model = build_model(opt)
    dataset = Samples()
    model.validation(torch.utils.data.DataLoader(dataset, batch_size=1), 1, None, save_img=False)
    network = model.net_g.eval()
    psnr = {}
    with torch.no_grad():
        for (lq, gt), folder in zip(dataset.items, dataset.data_info['folder']):
            out = network(lq[None])
            psnr.setdefault(folder, []).append(calculate_psnr(tensor2img([out[0]]), tensor2img([gt]), crop_border=0))
    per_sequence = np.mean([np.mean(values) for values in psnr.values()])
    per_frame = np.mean([v for values in psnr.values() for v in values])
    assert model.metric_results['psnr'] == pytest.approx(per_sequence, abs=1e-9)
    assert abs(per_sequence - per_frame) > 1e-4  # the two means differ here, so the test tells them apart
