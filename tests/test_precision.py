"""`train.precision`, `train.fp32_modules` and `train.channels_last` in the models' training step, checked on
what the network actually computed: the dtype each layer produced (forward hooks), the loss recomputed by hand in
fp32 from the output, the weights in memory, and the loss scale kept in the training state."""
import copy

import pytest
import torch

from basicsr_multigrid.utils.errors import OptionError
from tests.conftest import VIDEO_MODEL_OPTIONS, distilled_model, has_cpp_compiler

BF16_OPTIONS = dict(VIDEO_MODEL_OPTIONS, train=dict(VIDEO_MODEL_OPTIONS['train'], fix_flow=None, precision='bf16'))


def build(model_type='MultigridVideoRecurrentModel', **train):
    from basicsr.models import build_model
    torch.manual_seed(0)
    opt = dict(copy.deepcopy(VIDEO_MODEL_OPTIONS), model_type=model_type)
    opt['train'].update(fix_flow=None, **train)
    return build_model(opt)


def batch(seed=1, size=16, frames=3):
    generator = torch.Generator().manual_seed(seed)
    return {'lq': torch.rand(2, frames, 3, size, size, generator=generator),
            'gt': torch.rand(2, frames, 3, 4 * size, 4 * size, generator=generator)}


def output_dtypes(network, names):
    """{module name: [dtypes of its outputs]} filled while `network` runs."""
    seen = {name: [] for name in names}
    for name in names:
        network.get_submodule(name).register_forward_hook(
            lambda _m, _i, output, name=name: seen[name].append(output.dtype))
    return seen


def test_bf16_step_convolves_in_bf16_and_computes_the_loss_in_fp32():
    model = build(precision='bf16')
    seen = output_dtypes(model.net_g, ['conv_last', 'spynet.basic_module.5.basic_module.0'])
    before = {k: v.detach().clone() for k, v in model.net_g.named_parameters()}
    data = batch()
    model.feed_data(data)
    model.optimize_parameters(1)
    assert set(seen['conv_last']) == {torch.bfloat16}
    assert set(seen['spynet.basic_module.5.basic_module.0']) == {torch.bfloat16}
    assert model.output.dtype == torch.float32
    assert model.log_dict['l_pix'] == pytest.approx((model.output.detach() - data['gt']).abs().mean().item(), rel=1e-6)
    assert all(p.dtype == torch.float32 for p in model.net_g.parameters())
    assert any(not torch.equal(before[k], v) for k, v in model.net_g.named_parameters())


def test_fp32_modules_run_their_whole_forward_in_fp32():
    model = build(precision='bf16', fp32_modules=['spynet'])
    seen = output_dtypes(model.net_g, ['conv_last', 'spynet', 'spynet.basic_module.5.basic_module.0'])
    model.feed_data(batch())
    model.optimize_parameters(1)
    assert set(seen['conv_last']) == {torch.bfloat16}
    assert set(seen['spynet']) == set(seen['spynet.basic_module.5.basic_module.0']) == {torch.float32}


def test_bf16_step_stays_close_to_the_fp32_step():
    """Same weights, same batch: the bf16 step's loss and updated weights are near fp32's (bf16 keeps ~3 digits),
    and a broken autocast (fp32 everywhere) would make them identical, which the first assertion rules out."""
    data = batch()
    results = {}
    for precision in ('fp32', 'bf16'):
        model = build(precision=precision)
        model.feed_data(data)
        model.optimize_parameters(1)
        results[precision] = model.log_dict['l_pix'], model.output.detach()
    assert results['bf16'][1].sub(results['fp32'][1]).abs().max().item() > 0
    assert results['bf16'][0] == pytest.approx(results['fp32'][0], rel=2e-2)


def test_channels_last_stores_conv_weights_nhwc_and_gives_the_same_step():
    data = batch()
    outputs = {}
    for channels_last in (False, True):
        model = build(channels_last=channels_last)
        convs = [p for p in model.net_g.parameters() if p.dim() == 4 and p.shape[-1] > 1 and p.shape[1] > 1]
        assert all(p.is_contiguous(memory_format=torch.channels_last) == channels_last for p in convs)
        model.feed_data(data)
        model.optimize_parameters(1)
        outputs[channels_last] = model.output.detach(), model.net_g.conv_last.weight.detach().clone()
    assert torch.allclose(outputs[True][0], outputs[False][0], atol=1e-5)
    assert torch.allclose(outputs[True][1], outputs[False][1], atol=1e-6)


def test_distillation_teacher_runs_under_the_students_precision(tmp_path):
    model = distilled_model(tmp_path, precision='bf16', distill_opt={'type': 'L1Loss', 'loss_weight': 1.0})
    teacher_seen = output_dtypes(model.net_t, ['conv_last'])
    student_seen = output_dtypes(model.net_g, ['conv_last'])
    model.feed_data(batch())
    model.optimize_parameters(1)
    assert set(teacher_seen['conv_last']) == set(student_seen['conv_last']) == {torch.bfloat16}
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        teacher_output = model.net_t(model.lq).float()
    assert model.log_dict['l_distill'] == pytest.approx(
        (model.output.detach() - teacher_output).abs().mean().item(), rel=1e-6)


def test_fp16_loss_scale_is_saved_and_restored_with_the_training_state(tmp_path):
    """The scaler's state goes through the weights_only-loadable training state (fp16 itself needs CUDA; the
    scaler object is device-independent)."""
    from basicsr_multigrid.models.precision import Precision
    from basicsr_multigrid.utils.checkpoint import load_checkpoint
    model = build()
    model.opt['path']['training_states'] = str(tmp_path)
    model.precision = Precision('fp32', 'cpu')
    model.precision.scaler = torch.amp.GradScaler('cpu', init_scale=1024.0)
    model.precision.scaler.scale(torch.ones(()))  # the scaler creates its scale on first use
    model.precision.scaler.update(new_scale=256.0)
    model.save_training_state(epoch=0, current_iter=7)
    state = load_checkpoint(str(tmp_path / '7.state'))
    assert state['grad_scaler']['scale'] == 256.0
    resumed = build()
    resumed.precision = Precision('fp32', 'cpu')
    resumed.precision.scaler = torch.amp.GradScaler('cpu', init_scale=1024.0)
    resumed.resume_training(state)
    assert resumed.precision.scaler.get_scale() == 256.0


@pytest.mark.parametrize('train, message', [
    ({'precision': 'fp8'}, "train.precision: 'fp8' is not one of fp32, bf16, fp16"),
    ({'precision': 'fp16'}, 'train.precision: fp16 needs a CUDA device'),
    ({'precision': 'bf16', 'fp32_modules': 'spynet'}, 'train.fp32_modules: expected a list'),
    ({'fp32_modules': ['spynet']}, 'train.fp32_modules: only meaningful with train.precision bf16 or fp16'),
    ({'precision': 'bf16', 'fp32_modules': ['flownet']}, "train.fp32_modules: the network has no module 'flownet'"),
    ({'channels_last': 'yes'}, "train.channels_last: expected true or false, got 'yes'"),
    ({'max_bad_steps': 0}, 'train.max_bad_steps: must be a positive integer, got 0'),
])
def test_bad_precision_options_are_one_line_errors(train, message):
    with pytest.raises(OptionError, match='^' + message.replace('(', r'\(').replace(')', r'\)')):
        build(**train)


def test_preflight_refuses_precision_with_a_model_that_uses_basicsrs_own_step():
    from basicsr_multigrid.training.preflight import _check_step_options
    opt = dict(copy.deepcopy(BF16_OPTIONS), model_type='VideoRecurrentModel')
    with pytest.raises(OptionError, match='^train.precision: model_type VideoRecurrentModel trains in BasicSR'):
        _check_step_options(opt)
    _check_step_options(dict(opt, model_type='KnowledgeDistillationModel'))
    _check_step_options(dict(opt, model_type='MultigridEDVRModel'))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
@pytest.mark.parametrize('precision, compiled', [('fp16', False), ('bf16', False), ('fp16', True)])
def test_cuda_mixed_precision_steps_in_the_requested_dtype(precision, compiled):
    from basicsr.models import build_model
    torch.manual_seed(0)
    opt = dict(copy.deepcopy(VIDEO_MODEL_OPTIONS), model_type='MultigridVideoRecurrentModel', num_gpu=1)
    opt['train'].update(fix_flow=None, precision=precision, compile=compiled)
    model = build_model(opt)
    seen = output_dtypes(model.net_g, ['conv_last'])
    for current_iter in (1, 2, 3):
        model.feed_data({k: v.cuda() for k, v in batch().items()})
        model.optimize_parameters(current_iter)
    expected = torch.float16 if precision == 'fp16' else torch.bfloat16
    if not compiled:  # compiled graphs do not call module hooks one by one
        assert set(seen['conv_last']) == {expected}
    assert (model.precision.scaler is not None) == (precision == 'fp16')
    assert torch.isfinite(torch.tensor(model.log_dict['l_pix']))
    assert model.divergence.skipped_steps == 0
    if compiled:
        assert model.compile_meter.steps == 1  # one shape, compiled once


@pytest.mark.parametrize('value, expected', [
    (False, None), (None, None), (True, {'dynamic': False}),
    ({'mode': 'max-autotune'}, {'dynamic': False, 'mode': 'max-autotune'}), ({'dynamic': True}, {'dynamic': True})])
def test_compile_options(value, expected, monkeypatch):
    from torch._inductor import cpp_builder

    from basicsr_multigrid.models.compilation import compile_options
    monkeypatch.setattr(cpp_builder, 'get_cpp_compiler', lambda: 'g++')
    assert compile_options({'train': {'compile': value}}, 'cpu') == expected


@pytest.mark.parametrize('value, message', [
    ('yes', "train.compile: 'yes' is not one of false, true or a mapping"),
    ({'modes': 'default'}, 'train.compile.modes: unknown key (known: mode, dynamic)')])
def test_bad_compile_options_are_one_line_errors(value, message):
    from basicsr_multigrid.models.compilation import compile_options
    with pytest.raises(OptionError, match='^' + message.replace('(', r'\(').replace(')', r'\)')):
        compile_options({'train': {'compile': value}}, 'cpu')


def test_compile_without_a_cpp_compiler_is_a_one_line_error(monkeypatch):
    from torch._inductor import cpp_builder

    from basicsr_multigrid.models.compilation import compile_options

    def no_compiler():
        raise RuntimeError('No working C++ compiler found in torch._inductor.config.cpp.cxx: (None, g++)')
    monkeypatch.setattr(cpp_builder, 'get_cpp_compiler', no_compiler)
    with pytest.raises(OptionError, match=r'^train.compile: no C\+\+ compiler for torch.compile on CPU \(No working'):
        compile_options({'train': {'compile': True}}, 'cpu')


@pytest.mark.slow
@pytest.mark.skipif(not has_cpp_compiler(), reason='torch.compile on CPU needs a C++ compiler')
def test_compiled_step_compiles_once_per_shape_validates_eagerly_and_saves_plain_weights(tmp_path):
    """Two shapes, two steps each: only the first step at each shape compiles (counted by dynamo, not by us),
    test() at a third shape compiles nothing, the trained weights stay near an eager model's, and the saved
    checkpoint loads strictly into the plain arch."""
    from basicsr.archs.basicvsr_arch import BasicVSR

    from basicsr_multigrid.models.compilation import compiled_graph_count
    models = {'eager': build(), 'compiled': build(compile=True)}
    for size in (8, 8, 16, 16):
        for model in models.values():
            model.feed_data(batch(seed=size, size=size, frames=2))
            model.optimize_parameters(1)
    meter = models['compiled'].compile_meter
    assert meter.steps == 2 and meter.graphs >= 2 and meter.seconds > 0
    graphs = compiled_graph_count()
    models['compiled'].lq = torch.rand(1, 2, 3, 12, 12)
    models['compiled'].test()
    assert compiled_graph_count() == graphs
    eager, compiled = models['eager'].net_g.state_dict(), models['compiled'].net_g.state_dict()
    assert all(torch.allclose(compiled[k], eager[k], atol=1e-4) for k in eager)
    models['compiled'].opt['path']['models'] = str(tmp_path)
    models['compiled'].save_network(models['compiled'].net_g, 'net_g', 4)
    saved = torch.load(tmp_path / 'net_g_4.pth', weights_only=True)['params']
    BasicVSR(num_feat=4, num_block=1).load_state_dict(saved, strict=True)


def nan_at(model, iterations):
    """Make the pixel loss NaN at the given iterations (counted by calls)."""
    loss, calls = model.cri_pix, []

    def maybe_nan(output, target):
        calls.append(1)
        value = loss(output, target)
        return value * float('nan') if len(calls) in iterations else value
    model.cri_pix = maybe_nan


def snapshot(model):
    weights = {k: v.detach().clone() for k, v in model.net_g.state_dict().items()}
    ema = {k: v.detach().clone() for k, v in model.net_g_ema.state_dict().items()}
    moments = [s['exp_avg'].clone() for s in model.optimizer_g.state.values()]
    return weights, ema, moments


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a[0].values(), b[0].values())) and \
        all(torch.equal(x, y) for x, y in zip(a[1].values(), b[1].values())) and \
        all(torch.equal(x, y) for x, y in zip(a[2], b[2]))


def test_a_non_finite_loss_skips_the_update_of_weights_optimizer_and_ema():
    model = build(ema_decay=0.9)
    nan_at(model, {2})
    model.feed_data(batch())
    model.optimize_parameters(1)
    before = snapshot(model)
    model.optimize_parameters(2)  # NaN loss
    assert same(snapshot(model), before)
    assert model.log_dict['skipped_steps'] == 1
    model.optimize_parameters(3)
    after = snapshot(model)
    assert not any(torch.equal(after[0][k], before[0][k]) for k in ('conv_last.weight',))
    assert model.divergence.in_a_row == 0 and model.divergence.skipped_steps == 1


def test_non_finite_gradients_with_a_finite_loss_skip_the_step():
    model = build()
    model.feed_data(batch())
    model.optimize_parameters(1)
    before = {k: v.detach().clone() for k, v in model.net_g.state_dict().items()}
    handle = model.net_g.conv_last.weight.register_hook(lambda grad: grad * float('inf'))
    model.optimize_parameters(2)
    handle.remove()
    assert torch.isfinite(torch.tensor(model.log_dict['l_pix']))
    assert all(torch.equal(v, before[k]) for k, v in model.net_g.state_dict().items())
    assert model.log_dict['skipped_steps'] == 1


def test_max_bad_steps_in_a_row_stop_the_run_with_one_line():
    from basicsr_multigrid.utils.errors import TrainingStopped
    model = build(max_bad_steps=2)
    nan_at(model, {2, 4, 5})
    model.feed_data(batch())
    for current_iter in (1, 2, 3, 4):  # 2 and 4 are not in a row
        model.optimize_parameters(current_iter)
    with pytest.raises(TrainingStopped, match=r'^train.max_bad_steps: 2 steps in a row with a non-finite value, the '
                                              r'last at iteration 5 \(l_pix = nan\)'):
        model.optimize_parameters(5)


@pytest.mark.parametrize('capability, warns', [('AVX2', True), ('AVX512', False), ('DEFAULT', True)])
def test_bf16_on_a_cpu_without_native_bf16_is_warned_about(monkeypatch, capability, warns):
    from basicsr_multigrid.models.precision import slow_cpu_bf16_warning
    monkeypatch.setattr(torch.backends.cpu, 'get_cpu_capability', lambda: capability)
    warning = slow_cpu_bf16_warning('bf16', 'cpu')
    assert (warning is not None) == warns
    if warns:
        assert warning.startswith(f'train.precision: bf16 on a CPU with {capability} only')
    assert slow_cpu_bf16_warning('fp32', 'cpu') is None and slow_cpu_bf16_warning('bf16', 'cuda') is None
