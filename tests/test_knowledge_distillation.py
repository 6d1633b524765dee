"""Distillation models through the runner on the demo videos: for VSR with a multigrid schedule, a BasicVSR
teacher trained by the same model, then a narrower BasicVSR student distilled from it; for frame interpolation,
ST-MFNet -> ST-MFNet Mini. Bad teacher checkpoints stop the run with one line before any folder is written."""
import math
import os
from os import path as osp

import pytest
import torch

from basicsr_multigrid.models.feature_distillation import FeatureDistillation, attention_map
from basicsr_multigrid.utils.errors import OptionError
from basicsr_multigrid.training.cli import run_cli as cli
from basicsr_multigrid.training.runner import train_pipeline
from tests.conftest import (final_weights, metric_records, recorded, run_training, tiny_multigrid_options, train_until,
                            vfi_options, write_options)

LAPLACIAN = {'type': 'LaplacianPyramidLoss', 'reduction': 'mean'}


def kd_options(demo_data, name, teacher_path=None, **overrides):
    """Tiny BasicVSR runs: with `teacher_path`, a 4-channel student distils from the 8-channel teacher."""
    settings = dict(model_type='DistilledVideoRecurrentModel', datasets__train__gt_size=64,
                    train__multigrid__spatial_sizes=[8, 16], train__total_iter=6, train__scheduler__periods=[6],
                    val__val_freq=6, logger__save_checkpoint_freq=6,
                    train__pixel_opt=dict(LAPLACIAN, loss_weight=0.1 if teacher_path else 1.0))
    if teacher_path:
        settings.update(network_t={'type': 'BasicVSR', 'num_feat': 8, 'num_block': 1, 'spynet_path': None},
                        path__pretrain_network_t=teacher_path, network_g__num_feat=4,
                        train__distill_opt=dict(LAPLACIAN, loss_weight=1.0))
    settings.update(overrides)
    return tiny_multigrid_options(demo_data, name, **settings)


@pytest.fixture(scope='module')
def vsr_teacher(demo_data, tmp_path_factory):
    """A BasicVSR teacher trained for a few iterations by DistilledVideoRecurrentModel without network_t."""
    root = tmp_path_factory.mktemp('teacher')
    opt = kd_options(demo_data, 'vsr_teacher')
    run_training(root, write_options(opt, root))
    return str(root / 'experiments' / 'vsr_teacher' / 'models' / 'net_g_latest.pth')


@pytest.mark.slow
def test_vsr_student_distils_from_teacher_on_a_multigrid_schedule(demo_data, vsr_teacher, tmp_path):
    teacher_before = torch.load(vsr_teacher, weights_only=True)['params']
    opt = kd_options(demo_data, 'vsr_kd', vsr_teacher, val__val_freq=3)
    run_training(tmp_path, write_options(opt, tmp_path))
    logged = recorded(tmp_path, 'vsr_kd').iterations
    assert [r['iter'] for r in logged] == list(range(1, 7))
    assert all(r['l_gt'] > 0 and r['l_distill'] > 0 for r in logged)
    assert {r['phase'] for r in logged} == set(range(6))  # every multigrid phase was trained
    records = metric_records(tmp_path, 'vsr_kd')
    # the teacher is validated once, the student at every validation (the last iteration's once)
    assert [(r['iter'], r['dataset']) for r in records] == [(3, 'demo_val_teacher'), (3, 'demo_val'), (6, 'demo_val')]
    assert all(r['psnr'] > 10 and 0 < r['ssim'] <= 1 for r in records)
    student = torch.load(tmp_path / 'experiments' / 'vsr_kd' / 'models' / 'net_g_latest.pth', weights_only=True)
    assert student['params']['fusion.weight'].shape[:2] == (4, 8)  # the 4-channel student
    teacher_after = torch.load(vsr_teacher, weights_only=True)['params']
    assert all(torch.equal(teacher_before[k], teacher_after[k]) for k in teacher_before)


def run_cli(root, opt_path, capsys):
    """The entry point's behaviour on bad input: exit status 2 and one line on stderr."""
    with pytest.raises(SystemExit) as stopped:
        cli(lambda r: train_pipeline(r, ['train.py', '-opt', opt_path]), str(root))
    assert stopped.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def renamed_keys(state):
    return {'params': {f'renamed.{k}': v for k, v in state['params'].items()}}


BAD_TEACHERS = [  # (how the teacher set-up is broken, expected text in the one-line error)
    ('other_width', 'does not match network_t (BasicVSR): 17 shape mismatches, first backward_trunk.main.0.weight'),
    ('renamed_keys', 'missing keys spynet.mean, spynet.std, spynet.basic_module.0.basic_module.0.weight (+81 more)'),
    ('renamed_keys', 'unexpected keys renamed.spynet.'),
    ('missing_file', 'path.pretrain_network_t: file not found: '),
    ('no_checkpoint_path', 'path.pretrain_network_t: required with network_t'),
    ('distill_without_teacher', 'train.distill_opt: distilling needs a teacher'),
]


@pytest.mark.slow
@pytest.mark.parametrize('broken, expected', BAD_TEACHERS, ids=[b for b, _ in BAD_TEACHERS])
def test_bad_teacher_set_up_stops_with_one_line_before_any_folder(demo_data, vsr_teacher, tmp_path, capsys, broken,
                                                                 expected):
    teacher = vsr_teacher
    if broken == 'renamed_keys':
        teacher = str(tmp_path / 'renamed.pth')
        torch.save(renamed_keys(torch.load(vsr_teacher, weights_only=True)), teacher)
    elif broken == 'missing_file':
        teacher = str(tmp_path / 'nowhere.pth')
    opt = kd_options(demo_data, 'kd_bad', teacher)
    if broken == 'other_width':
        opt['network_t']['num_feat'] = 6
    elif broken == 'no_checkpoint_path':
        del opt['path']['pretrain_network_t']
    elif broken == 'distill_without_teacher':
        del opt['network_t']
    message = run_cli(tmp_path, write_options(opt, tmp_path), capsys)
    assert message.startswith('error: ') and expected in message, message
    assert not osp.exists(tmp_path / 'experiments')


def test_feature_distillation_compares_attention_maps_of_any_widths():
    torch.manual_seed(0)
    student = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Conv2d(4, 3, 1))
    teacher = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.Conv2d(16, 3, 1))
    distillation = FeatureDistillation({'type': 'L1Loss', 'loss_weight': 2.0, 'layers': {'0': '0'}}, student, teacher)
    frames = torch.rand(2, 3, 8, 8)
    student(torch.rand(2, 3, 8, 8))  # before record(): a validation forward, not part of the loss
    distillation.record()
    student(frames)
    with torch.no_grad():
        teacher(frames)
    loss = distillation()  # stops recording: the forwards below are not recorded
    expected = 2.0 * (attention_map(student[0](frames)) - attention_map(teacher[0](frames))).abs().mean()
    assert loss.item() == pytest.approx(expected.item())
    loss.backward()
    assert student[0].weight.grad.abs().sum() > 0 and teacher[0].weight.grad is None


class Recurrent(torch.nn.Module):
    """A trunk applied once per frame, as BasicVSR's propagation does."""

    def __init__(self, width):
        super().__init__()
        self.trunk = torch.nn.Conv2d(3 + width, width, 3, padding=1)
        self.width = width

    def forward(self, clip):
        state = clip.new_zeros(clip.shape[0], self.width, *clip.shape[-2:])
        for frame in clip.unbind(1):
            state = torch.relu(self.trunk(torch.cat((frame, state), dim=1)))
        return state


def test_feature_distillation_of_a_recurrent_layer_compares_every_call():
    torch.manual_seed(0)
    student, teacher = Recurrent(2), Recurrent(6)
    distillation = FeatureDistillation({'type': 'MSELoss', 'layers': {'trunk': 'trunk'}}, student, teacher)
    clip = torch.rand(1, 3, 3, 8, 8)
    distillation.record()
    student(clip)
    with torch.no_grad():
        teacher(clip)
    assert [len(calls) for calls in distillation.calls[0]] == [3, 3]  # one call per frame, student and teacher
    loss = distillation()
    maps = []
    for network in (student, teacher):
        calls, state = [], clip.new_zeros(1, network.width, 8, 8)
        for frame in clip.unbind(1):
            output = network.trunk(torch.cat((frame, state), dim=1))  # what the hooked module returns
            calls.append(attention_map(output))
            state = torch.relu(output)
        maps.append(calls)
    expected = sum((s - t).pow(2).mean() for s, t in zip(*maps)) / 3  # the mean over the three frames' calls
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert distillation.calls == [([], [])]  # the loss consumed the recording; the forwards above added nothing
    with pytest.raises(RuntimeError, match='nothing recorded for trunk / trunk; call record()'):
        distillation()


@pytest.mark.parametrize('options, message', [
    ({'layers': {'nope': '0'}}, "student network has no module 'nope'"),
    ({'layers': {'0': '0'}, 'mode': 'maps'}, "mode: 'maps'"),
    ({'layers': []}, 'layers: give'),
])
def test_feature_distillation_options_are_checked(options, message):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    with pytest.raises(OptionError, match=message):
        FeatureDistillation(dict(type='L1Loss', **options), net, net)


# ------------------------------------------------------------------------------------------ frame interpolation
@pytest.mark.slow
def test_stmfnet_teacher_then_mini_student_by_distillation_on_demo_vfi_data(demo_data, vfi_teacher, tmp_path):
    teacher_weights = str(vfi_teacher / 'experiments' / 'vfi_teacher' / 'models' / 'net_g_latest.pth')
    teacher_record = metric_records(vfi_teacher, 'vfi_teacher')[-1]
    # running statistics, as the teacher's own run validated (the demo file normalises the teacher per batch)
    opt = vfi_options(demo_data, 'train_STMFNetMini_KD_demo.yml', 'vfi_kd', path__pretrain_network_t=teacher_weights,
                      train__teacher_batchnorm='running')
    run_training(tmp_path, write_options(opt, tmp_path))
    assert [r['iter'] for r in recorded(tmp_path, 'vfi_kd').iterations if 'l_gt' in r and 'l_distill' in r] == [1, 2, 3]
    records = metric_records(tmp_path, 'vfi_kd')
    assert [r['dataset'] for r in records] == ['demo_vfi_val_teacher', 'demo_vfi_val']
    # the teacher, evaluated by the student's run, scores what it scored at the end of its own run
    assert records[0]['psnr'] == pytest.approx(teacher_record['psnr'], abs=1e-4)
    assert all(math.isfinite(r['psnr']) and math.isfinite(r['ssim']) for r in records)  # 3 iterations: values low
    student = torch.load(tmp_path / 'experiments' / 'vfi_kd' / 'models' / 'net_g_latest.pth', weights_only=True)
    assert not any(k.startswith('flow_estimator.') for k in student['params'])


@pytest.mark.slow
def test_distillation_run_resumes_with_its_teacher(demo_data, vsr_teacher, tmp_path):
    """basicsr's check_resume would point path.pretrain_network_t at a net_t_<iter>.pth nobody saves."""
    opt_path = write_options(kd_options(demo_data, 'kd_resume', vsr_teacher, logger__save_checkpoint_freq=3), tmp_path)
    run_training(tmp_path, opt_path)
    os.remove(tmp_path / 'experiments' / 'kd_resume' / 'training_states' / '6.state')
    assert 'Resuming training from epoch: 0, iter: 3.' in run_training(tmp_path, opt_path, '--auto_resume').stdout
    logged = recorded(tmp_path, 'kd_resume').iterations  # the interrupted run's records of 4-6 were replaced
    assert [r['iter'] for r in logged] == list(range(1, 7)) and all(r['l_distill'] > 0 for r in logged)


@pytest.mark.slow
def test_sigkilled_frame_interpolation_distillation_resumes_to_the_uninterrupted_weights(demo_data, vfi_teacher,
                                                                                         tmp_path):
    """Every training item draws its crop, flips and order from its own seed through the scheduled sampler, so a
    run killed after its checkpoint at iteration 3 and resumed reads what an uninterrupted run reads."""
    teacher_weights = str(vfi_teacher / 'experiments' / 'vfi_teacher' / 'models' / 'net_g_latest.pth')
    opt = vfi_options(demo_data, 'train_STMFNetMini_KD_demo.yml', 'vfi_kd_kill', train__total_iter=6, val__val_freq=6,
                      path__pretrain_network_t=teacher_weights, datasets__train__num_worker_per_gpu=1)
    opt_path = write_options(opt, tmp_path)
    train_until(tmp_path / 'reference', opt_path)
    root = tmp_path / 'interrupted'
    train_until(root, opt_path, 'iter:       5,')  # checkpoint of iteration 3 written, 4 and 5 lost
    assert 'Resuming training from epoch: 0, iter: 3.' in train_until(root, opt_path, None, '--auto_resume')
    logged = recorded(root, 'vfi_kd_kill').iterations
    assert [r['iter'] for r in logged] == list(range(1, 7))
    assert [r['l_distill'] for r in logged] == [r['l_distill'] for r in recorded(tmp_path / 'reference',
                                                                                 'vfi_kd_kill').iterations]
    reference = final_weights(tmp_path / 'reference', 'vfi_kd_kill')
    for key, value in final_weights(root, 'vfi_kd_kill').items():
        torch.testing.assert_close(value, reference[key], rtol=0, atol=1e-6)
