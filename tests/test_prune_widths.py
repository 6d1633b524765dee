"""Sparse training -> surviving widths -> student option file, end to end on the demo frame-interpolation data
(tiny widths), and the width read-out on hand-zeroed weights."""
from os import path as osp

import pytest
import torch
import yaml

from basicsr_multigrid import pruning
from basicsr_multigrid.archs.stmfnet_arch import STMFNet
from basicsr_multigrid.pruning import legal_width
from basicsr_multigrid.utils.errors import OptionError
from tests.conftest import REPO_ROOT, TINY_WIDTHS, metric_records, run_tool, run_training, vfi_options, write_options


def zero_channels(state, tensors, channels):
    """Zero `channels` (indices of the width) in every tensor of a channel unit."""
    for name, dim, offset in tensors:
        for channel in channels:
            if offset <= channel < offset + state[name].shape[dim]:
                state[name].select(dim, channel - offset).zero_()


def test_surviving_channels_are_the_union_over_a_widths_layers_biases_and_batchnorm_shifts():
    torch.manual_seed(0)
    network = STMFNet(**dict(TINY_WIDTHS, grid_channels=[6, 6, 6], kernel_channels=8))
    state = {k: v.clone() for k, v in network.state_dict().items()}
    units = network.channel_units()
    zero_channels(state, units['grid_channels[1]'], range(2, 6))
    zero_channels(state, units['kernel_channels'], range(5, 8))
    # feature widths: two branches side by side (16 + 16 channels); branch channels die with their conv3 rows,
    # shortcut projection rows and BatchNorm shifts. Zero 6 of each branch.
    zero_channels(state, units['feature_channels[1]'], list(range(10, 16)) + list(range(26, 32)))
    assert any(name.endswith('bn3.bias') for name, _, _ in units['feature_channels[1]'])
    survivors = pruning.surviving_channels(network, state, threshold=0.0)
    assert survivors['grid_channels[1]'] == (6, [0, 1])
    assert survivors['kernel_channels'] == (8, list(range(5)))
    assert survivors['feature_channels[1]'] == (32, list(range(10)) + list(range(16, 26)))
    assert pruning.pruned_widths(network, state, 0.0)['grid_channels[0]'] == (6, 6)
    # one layer's bias alone keeps channel 3 of grid row 1; one branch's BatchNorm shift keeps feature channel 12
    bias = next(name for name, _, _ in units['grid_channels[1]'] if name.endswith('.bias'))
    state[bias][3] = 0.5
    shift = next(name for name, _, offset in units['feature_channels[1]'] if name.endswith('bn3.bias') and offset == 0)
    state[shift][12] = 0.5
    survivors = pruning.surviving_channels(network, state, threshold=0.0)
    assert survivors['grid_channels[1]'] == (6, [0, 1, 3])
    assert 12 in survivors['feature_channels[1]'][1]


def test_read_off_errors_name_the_width_or_the_tensor():
    network = STMFNet(**dict(TINY_WIDTHS, grid_channels=[6, 6, 6], kernel_channels=8))
    with pytest.raises(OptionError, match=r'^grid_channels\[2\]: all 6 channels were pruned; train.optim_g.lambda_ '
                                          r'0.04 is too large for this width \(try 0.01\)$'):
        pruning.check_no_width_emptied({'grid_channels[1]': (6, 2), 'grid_channels[2]': (6, 0)}, 0.04)
    wider = STMFNet(**dict(TINY_WIDTHS, grid_channels=[6, 8, 6], kernel_channels=8)).state_dict()
    with pytest.raises(OptionError, match=r'^w.pth does not match the network \(.*: shape \(8, .*the network has '
                                          r'\(6, '):
        pruning.check_state_matches(network, wider, 'w.pth')
    with pytest.raises(OptionError, match='feature_channels\\[0\\]: the student STMFNet needs at least 32 channels, '
                                          'more than the 30 of the sparse-trained network'):
        pruning.student_arguments(dict(type='STMFNet', **TINY_WIDTHS), {'feature_channels[0]': (30, 3)})


def test_surviving_widths_are_rounded_to_what_the_arch_accepts():
    assert [legal_width(STMFNet.width_rules, 'feature_channels', w) for w in (0, 20, 33, 34)] == [32, 32, 34, 34]
    assert [legal_width(STMFNet.width_rules, 'kernel_channels', w) for w in (0, 5)] == [1, 5]


@pytest.mark.slow
def test_sparse_training_then_prune_widths_writes_a_runnable_student(demo_data, vfi_teacher, tmp_path):
    """The teacher with channels 2, 3 of GridNet row 1 and channel 1 of the kernel heads made 100x smaller (every
    tensor of their units): the sparse run removes exactly those, whatever else its gradient steps do."""
    trained = torch.load(vfi_teacher / 'experiments' / 'vfi_teacher' / 'models' / 'net_g_latest.pth', weights_only=True)
    state = trained['params']
    units = STMFNet(**TINY_WIDTHS).channel_units()
    for key, channels in (('grid_channels[1]', (2, 3)), ('kernel_channels', (1,))):
        for name, dim, offset in units[key]:
            for channel in channels:
                state[name].select(dim, channel - offset).mul_(0.01)
    teacher_weights = str(tmp_path / 'teacher.pth')
    torch.save(trained, teacher_weights)
    # lambda relative to each unit's RMS r_u (about 0.7 and 0.87 of the kept channels' size here): the two proximal
    # steps remove 2 x lr x lambda x r_u = 0.04 of a kept channel's size, far more than the 0.01 of the shrunk ones,
    # and the three steps take 6% off the kept ones
    sparse = vfi_options(demo_data, 'train_STMFNet_sparse_demo.yml', 'sparse', path__pretrain_network_g=teacher_weights,
                         train__optim_g__lr=1e-2, train__optim_g__lambda_=3.0, train__optim_g__prox_iters=2)
    sparse_path = write_options(sparse, tmp_path, 'sparse.yml')
    log = run_training(tmp_path, sparse_path).stdout
    assert 'density: ' in log
    out = str(tmp_path / 'student.yml')
    template = osp.join(REPO_ROOT, 'options', 'train', 'demo', 'train_STMFNetMini_KD_demo.yml')
    init = str(tmp_path / 'student_init.pth')
    result = run_tool('prune_widths', '-opt', sparse_path, '--weights',
                      tmp_path / 'experiments' / 'sparse' / 'models' / 'net_g_latest.pth', '--template', template,
                      '--out', out, '--init-weights', init)
    assert result.returncode == 0, result.stderr
    with open(out) as f:
        student = yaml.safe_load(f)
    assert student['path']['pretrain_network_t'] == teacher_weights
    assert student['path']['pretrain_network_g'] == init  # starts from the surviving channels
    assert student['network_t'] == sparse['network_g'] and student['network_g']['type'] == 'STMFNetMini'
    widths, teacher_widths = student['network_g'], sparse['network_g']
    assert widths['grid_channels'] == [4, 2, 4] and widths['kernel_channels'] == 3
    assert widths['tem_channels'] == teacher_widths['tem_channels'] == TINY_WIDTHS['tem_channels']
    assert widths['use_flow'] is True and widths['flow_estimator'] == 'dis'  # the demo template's DIS branch
    # the written file is a distillation run that trains as it is (pointed at the test data)
    student_run = vfi_options(demo_data, out, 'pruned_student')
    student_run['network_g'] = widths
    run_training(tmp_path, write_options(student_run, tmp_path, 'pruned.yml'))
    assert metric_records(tmp_path, 'pruned_student')[0]['dataset'] == 'demo_vfi_val_teacher'


@pytest.mark.slow
def test_existing_output_is_kept_and_bad_weights_are_named(tmp_path):
    out = tmp_path / 'student.yml'
    out.write_text('keep me\n')
    template = osp.join(REPO_ROOT, 'options', 'train', 'demo', 'train_STMFNetMini_KD_demo.yml')
    sparse = osp.join(REPO_ROOT, 'options', 'train', 'demo', 'train_STMFNet_sparse_demo.yml')
    args = ['-opt', sparse, '--weights', str(tmp_path / 'none.pth'), '--template', template, '--out', str(out)]
    result = run_tool('prune_widths', *args)
    assert result.returncode == 2 and 'exists (use --overwrite' in result.stderr and out.read_text() == 'keep me\n'
    result = run_tool('prune_widths', *args, '--overwrite')
    assert result.returncode == 2 and result.stderr.strip() == f'error: --weights: file not found: {tmp_path}/none.pth'
    assert out.read_text() == 'keep me\n'


def test_student_initialised_from_the_surviving_channels_computes_the_teachers_function():
    """Channels that are exactly zero in every tensor of their unit contribute nothing: a student built at the
    surviving widths and initialised from the teacher's surviving channels gives the teacher's output."""
    torch.manual_seed(0)
    teacher_opt = dict(type='STMFNet', **dict(TINY_WIDTHS, grid_channels=[6, 6, 6], kernel_channels=8))
    teacher = STMFNet(**{k: v for k, v in teacher_opt.items() if k != 'type'}).eval()
    state = {k: v.clone() for k, v in teacher.state_dict().items()}
    units = teacher.channel_units()
    # TEM fuse channel 1 is zeroed through its BatchNorm's scale and shift only; its conv row stays non-zero
    for key, channels in (('grid_channels[1]', (1, 4)), ('kernel_channels', (0, 5, 7)), ('tem_fuse_channels', (1,))):
        zero_channels(state, units[key], channels)
    assert (state['dyntex_generator.feature_fuse.0.weight'][1] != 0).any()
    teacher.load_state_dict(state)
    survivors = pruning.surviving_channels(teacher, state, threshold=0.0)
    student_opt = dict(type='STMFNet', **pruning.student_arguments(teacher_opt, pruning.pruned_widths(
        teacher, state, 0.0))[1])
    assert (student_opt['grid_channels'], student_opt['kernel_channels'], student_opt['tem_fuse_channels']) == (
        [6, 4, 6], 5, 3)
    initial, kept = pruning.pruned_initial_state(teacher_opt, state, survivors, student_opt)
    student = STMFNet(**{k: v for k, v in student_opt.items() if k != 'type'}).eval()
    student.load_state_dict(initial)
    assert len(kept) == len(initial)  # every tensor came from the teacher
    frames = torch.rand(1, 4, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(student(frames), teacher(frames), rtol=0, atol=1e-5)
    # the 3-D U-Net's decoder concatenates two widths: the one layer reading that concatenation (its output is
    # their sum) keeps the student's own initialisation
    zero_channels(state, units['tem_channels[1]'], (3,))
    survivors = pruning.surviving_channels(teacher, state, threshold=0.0)
    student_opt['tem_channels'] = [4, 3, 4, 4]
    initial, kept = pruning.pruned_initial_state(teacher_opt, state, survivors, student_opt)
    assert [name for name in initial if name not in kept] == ['dyntex_generator.decoder.2.upconv.0.weight']
