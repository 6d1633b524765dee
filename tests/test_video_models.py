"""The video models' own training rules, on in-memory networks: `train.flow_lr_mul` reaches the optimizer and
`train.fix_flow` holds from whatever iteration a run starts at (a resumed run included), for the plain and the
distilled video model."""
import copy

import pytest
import torch

OPTIONS = {'name': 'video_model', 'scale': 4, 'num_gpu': 0, 'is_train': True, 'dist': False, 'rank': 0,
           'world_size': 1, 'network_g': {'type': 'BasicVSR', 'num_feat': 4, 'num_block': 1, 'spynet_path': None},
           'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
           'train': {'optim_g': {'type': 'Adam', 'lr': 1e-3}, 'flow_lr_mul': 0.125, 'fix_flow': 5,
                     'scheduler': {'type': 'MultiStepRestartLR', 'milestones': [100], 'gamma': 0.5},
                     'total_iter': 100, 'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}},
           'val': {'val_freq': 100, 'metrics': None}}
MODEL_TYPES = ('MultigridVideoRecurrentModel', 'DistilledVideoRecurrentModel')


def build(model_type, optim_g=None):
    from basicsr.models import build_model
    torch.manual_seed(0)
    opt = dict(copy.deepcopy(OPTIONS), model_type=model_type)
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
    opt = copy.deepcopy(OPTIONS)
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
