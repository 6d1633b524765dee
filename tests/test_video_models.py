"""The video models' own training rules, on in-memory networks: `train.flow_lr_mul` reaches the optimizer and
`train.fix_flow` holds from whatever iteration a run starts at (a resumed run included), for the plain and the
distilled video model; the distillation step (gate, feature distillation of recurrent layers)."""
import copy

import pytest
import torch

from basicsr_multigrid.models.feature_distillation import FeatureDistillation
from tests.conftest import VIDEO_MODEL_OPTIONS, distilled_model

MODEL_TYPES = ('MultigridVideoRecurrentModel', 'DistilledVideoRecurrentModel')


def build(model_type, optim_g=None):
    from basicsr.models import build_model
    torch.manual_seed(0)
    opt = dict(copy.deepcopy(VIDEO_MODEL_OPTIONS), model_type=model_type)
    if optim_g:
        opt['train']['optim_g'] = optim_g
    return build_model(opt)


def flow_and_other_parameters(model):
    flow, other = {}, {}
    for name, param in model.net_g.named_parameters():
        (flow if 'spynet' in name else other)[name] = param
    return flow, other


@pytest.mark.parametrize('optim_g', [None, {'type': 'OBProxSG', 'lr': 1e-3, 'lambda_': 1e-4, 'sparsity': 'channel'}],
                         ids=['adam', 'obproxsg-channel'])
@pytest.mark.parametrize('model_type', MODEL_TYPES)
def test_flow_network_trains_at_flow_lr_mul_times_the_lr(model_type, optim_g):
    model = build(model_type, optim_g)
    flow, other = flow_and_other_parameters(model)
    lr_of = {id(p): group['lr'] for group in model.optimizer_g.param_groups for p in group['params']}
    assert flow and all(lr_of[id(p)] == pytest.approx(1.25e-4, rel=1e-9) for p in flow.values())
    assert all(lr_of[id(p)] == pytest.approx(1e-3, rel=1e-9) for p in other.values())


@pytest.mark.parametrize('model_type', MODEL_TYPES)
def test_fix_flow_holds_in_a_run_that_starts_after_iteration_1(model_type):
    """A run resumed at iteration 3 with fix_flow 5: the flow weights stay bit-identical until iteration 5."""
    model = build(model_type)
    flow, other = flow_and_other_parameters(model)
    generator = torch.Generator().manual_seed(1)
    model.feed_data({'lq': torch.rand(1, 3, 3, 16, 16, generator=generator),
                     'gt': torch.rand(1, 3, 3, 64, 64, generator=generator)})
    flow_before = {k: v.detach().clone() for k, v in flow.items()}
    other_before = {k: v.detach().clone() for k, v in other.items()}
    for current_iter in (3, 4):
        model.optimize_parameters(current_iter)
    assert all(torch.equal(flow[k], flow_before[k]) for k in flow)
    assert any(not torch.equal(other[k], other_before[k]) for k in other)
    model.optimize_parameters(5)
    assert any(not torch.equal(flow[k], flow_before[k]) for k in flow)


def test_distillation_step_keeps_the_teacher_frozen_and_weighs_each_term_as_configured(tmp_path):
    """In memory, after student steps: the teacher has no gradients, stays in eval mode and holds exactly the
    checkpoint's weights; the logged GT term is 0.1 x the unweighted Laplacian loss of the student's output."""
    from basicsr.archs.basicvsr_arch import BasicVSR
    from basicsr.models import build_model

    from basicsr_multigrid.losses.laplacian_pyramid_loss import LaplacianPyramidLoss
    torch.manual_seed(1)
    teacher_state = BasicVSR(num_feat=8, num_block=1).state_dict()
    torch.save({'params': teacher_state}, tmp_path / 'teacher.pth')
    opt = copy.deepcopy(VIDEO_MODEL_OPTIONS)
    opt['model_type'] = 'DistilledVideoRecurrentModel'
    opt['network_t'] = {'type': 'BasicVSR', 'num_feat': 8, 'num_block': 1, 'spynet_path': None}
    opt['path']['pretrain_network_t'] = str(tmp_path / 'teacher.pth')
    opt['train'].update(fix_flow=None, pixel_opt={'type': 'LaplacianPyramidLoss', 'loss_weight': 0.1},
                        distill_opt={'type': 'LaplacianPyramidLoss', 'loss_weight': 1.0})
    model = build_model(opt)
    generator = torch.Generator().manual_seed(2)
    gt = torch.rand(1, 3, 3, 64, 64, generator=generator)
    for current_iter in (1, 2):
        model.feed_data({'lq': torch.rand(1, 3, 3, 16, 16, generator=generator), 'gt': gt})
        model.optimize_parameters(current_iter)
    assert not model.net_t.training and not any(p.requires_grad for p in model.net_t.parameters())
    assert all(torch.equal(value, teacher_state[key]) for key, value in model.net_t.state_dict().items())
    unweighted = LaplacianPyramidLoss(loss_weight=1.0)(model.output.detach(), gt).item()
    assert model.log_dict['l_gt'] == pytest.approx(0.1 * unweighted, rel=1e-6)
    with torch.no_grad():
        teacher_output = model.net_t(model.lq)
    assert model.log_dict['l_distill'] == pytest.approx(
        LaplacianPyramidLoss(loss_weight=1.0)(model.output.detach(), teacher_output).item(), rel=1e-6)


@pytest.mark.parametrize('reduction', ['mean', 'sum'])
def test_teacher_better_gate_distils_only_the_items_the_teacher_gets_right(tmp_path, reduction):
    """Item 0's ground truth is the teacher's output, item 1's the student's: only item 0 is distilled, and the
    logged term is recomputed by hand from the outputs before the step."""
    model = distilled_model(tmp_path, distill_gate='teacher_better',
                            distill_opt={'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': reduction})
    lq = torch.rand(2, 3, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        student, teacher = model.net_g(lq), model.net_t(lq)
    model.feed_data({'lq': lq, 'gt': torch.stack([teacher[0], student[1]])})
    model.optimize_parameters(1)
    kept_item = (student[0] - teacher[0]).abs()
    expected = kept_item.sum() if reduction == 'sum' else kept_item.mean() / 2
    assert model.log_dict['distill_kept'] == pytest.approx(0.5)
    assert model.log_dict['l_distill'] == pytest.approx(expected.item(), rel=1e-5)


def test_feature_distillation_in_a_training_step_compares_every_frame_and_skips_validation(tmp_path):
    """The step records the trunks of both networks once per frame, the logged term is what FeatureDistillation
    computes from those calls, and a validation forward between steps adds nothing to the next step's loss."""
    layers = {'forward_trunk': 'forward_trunk'}
    model = distilled_model(tmp_path, feature_distill_opt={'type': 'MSELoss', 'loss_weight': 1.0, 'layers': layers})
    lq = torch.rand(1, 3, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    model.feed_data({'lq': lq, 'gt': torch.rand(1, 3, 3, 64, 64, generator=torch.Generator().manual_seed(6))})
    trunk_calls = []
    hook = model.net_g.forward_trunk.register_forward_hook(lambda *_: trunk_calls.append(1))
    model.optimize_parameters(1)
    hook.remove()
    assert len(trunk_calls) == 3 and model.feature_distillation.calls == [([], [])]  # one per frame, consumed
    first = model.log_dict['l_feature']
    model.feed_data({'lq': torch.rand(1, 5, 3, 16, 16), 'gt': torch.rand(1, 5, 3, 64, 64)})
    model.test()  # a validation forward of five frames: not recorded
    assert model.feature_distillation.calls == [([], [])]
    reference = FeatureDistillation({'type': 'MSELoss', 'layers': layers}, model.net_g, model.net_t)
    reference.record()
    model.net_g(lq)
    with torch.no_grad():
        model.net_t(lq)
    assert model.feature_distillation is not reference and first > 0
    expected_next = reference().item()  # the updated student's loss on the same clip
    model.feed_data({'lq': lq, 'gt': torch.rand(1, 3, 3, 64, 64)})
    model.optimize_parameters(2)
    assert model.log_dict['l_feature'] == pytest.approx(expected_next, rel=1e-5)


def test_teacher_better_gate_keeping_every_item_equals_the_ungated_loss(tmp_path):
    lq = torch.rand(2, 3, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    logged = {}
    for gate in ('none', 'teacher_better'):
        model = distilled_model(tmp_path, distill_gate=gate,
                                distill_opt={'type': 'LaplacianPyramidLoss', 'loss_weight': 1.0})
        with torch.no_grad():
            model.feed_data({'lq': lq, 'gt': model.net_t(lq)})  # the teacher is always the better one
        model.optimize_parameters(1)
        logged[gate] = model.log_dict['l_distill']
    assert logged['teacher_better'] == pytest.approx(logged['none'], rel=1e-5)


class BatchNormTeacher(torch.nn.Module):
    """A x4 video upscaler whose output goes through a BatchNorm layer with non-trivial running statistics."""

    def __init__(self):
        super().__init__()
        self.norm = torch.nn.BatchNorm2d(3)
        self.norm.running_mean.fill_(0.3)
        self.norm.running_var.fill_(4.0)

    def forward(self, lq):
        frames = torch.nn.functional.interpolate(lq.flatten(0, 1), scale_factor=4, mode='nearest')
        return self.norm(frames).view(*lq.shape[:3], *frames.shape[-2:])


@pytest.mark.parametrize('mode', ['running', 'batch'])
def test_teacher_batchnorm_batch_distils_towards_the_batch_normalised_teacher(tmp_path, mode):
    """With `teacher_batchnorm: batch` the logged distillation term is the student's loss against the teacher's
    output normalised with the batch's own statistics (recomputed here in training mode on a copy); the teacher's
    running statistics and batch count stay as they were, and it stays in eval mode."""
    model = distilled_model(tmp_path, teacher_batchnorm=mode, distill_opt={'type': 'L1Loss', 'loss_weight': 1.0})
    model.net_t = BatchNormTeacher().eval().requires_grad_(False)
    lq = torch.rand(2, 3, 3, 16, 16, generator=torch.Generator().manual_seed(8))
    model.feed_data({'lq': lq, 'gt': torch.rand(2, 3, 3, 64, 64)})
    with torch.no_grad():
        student = model.net_g(lq)
        target = copy.deepcopy(model.net_t).train(mode == 'batch')(lq)
    model.optimize_parameters(1)
    assert model.log_dict['l_distill'] == pytest.approx((student - target).abs().mean().item(), rel=1e-5)
    norm = model.net_t.norm
    assert not norm.training and norm.track_running_stats and norm.num_batches_tracked.item() == 0
    assert torch.equal(norm.running_mean, torch.full((3, ), 0.3))
    assert torch.equal(norm.running_var, torch.full((3, ), 4.0))


@pytest.mark.parametrize('train, message', [
    ({'distill_gate': 'always', 'distill_opt': {'type': 'L1Loss'}},
     "train.distill_gate: 'always' is not one of none, teacher_better"),
    ({'distill_gate': 'teacher_better'}, 'train.distill_gate: teacher_better needs a teacher'),
    ({'teacher_batchnorm': 'eval', 'distill_opt': {'type': 'L1Loss'}},
     "train.teacher_batchnorm: 'eval' is not one of running, batch"),
])
def test_bad_distill_gate_is_a_one_line_error_naming_the_key(train, message):
    from basicsr.models import build_model

    from basicsr_multigrid.utils.errors import OptionError
    opt = dict(copy.deepcopy(VIDEO_MODEL_OPTIONS), model_type='DistilledVideoRecurrentModel')
    opt['train'].update(train)
    if 'distill_opt' in train:
        opt['network_t'] = {'type': 'BasicVSR', 'num_feat': 8, 'num_block': 1, 'spynet_path': None}
        opt['path']['pretrain_network_t'] = 'unused.pth'
    with pytest.raises(OptionError, match=message.replace('(', r'\(')):
        build_model(opt)


def ema_model(val_ema=None):
    from basicsr.models import build_model
    torch.manual_seed(0)
    opt = dict(copy.deepcopy(VIDEO_MODEL_OPTIONS), model_type='MultigridVideoRecurrentModel')
    opt['train']['ema_decay'] = 0.5
    if val_ema is not None:
        opt['val']['ema'] = val_ema
    model = build_model(opt)
    with torch.no_grad():
        for param in model.net_g_ema.parameters():  # EMA weights that give another output than net_g's
            param.mul_(0.5)
    return model


@pytest.mark.parametrize('val_ema, scored', [(None, 'net_g_ema'), (True, 'net_g_ema'), ('both', 'net_g_ema'),
                                             (False, 'net_g')])
def test_validation_scores_the_weights_val_ema_names(val_ema, scored):
    model = ema_model(val_ema)
    lq = torch.rand(1, 3, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = getattr(model, scored)(lq)
        other = getattr(model, 'net_g' if scored == 'net_g_ema' else 'net_g_ema')(lq)
    assert not torch.allclose(expected, other)
    trained, ema = model.net_g, model.net_g_ema
    model.feed_data({'lq': lq})
    model.test()
    assert torch.equal(model.output, expected)
    assert model.net_g is trained and model.net_g_ema is ema and trained.training and not ema.training


@pytest.mark.parametrize('val, message', [
    ({'ema': 'yes'}, "val.ema: 'yes' is not one of true, false, both"),
    ({'ema': 1}, 'val.ema: 1 is not one of true, false, both'),
    ({'ema': 'both', 'no_ema': True}, 'val.ema: both needs an EMA to score; set train.ema_decay > 0'),
])
def test_bad_val_ema_is_a_one_line_error_naming_the_key(val, message):
    from basicsr_multigrid.models.ema_validation import ema_validation_mode
    from basicsr_multigrid.utils.errors import OptionError
    with pytest.raises(OptionError, match=message):
        ema_validation_mode({'val': {'ema': val['ema']}, 'train': {'ema_decay': 0 if 'no_ema' in val else 0.9}})
