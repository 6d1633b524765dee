"""Sparse training -> surviving widths -> student option file, end to end on the demo frame-interpolation data
(tiny widths), and the width read-out on hand-zeroed weights."""
import sys
from os import path as osp

import pytest
import torch
import yaml

from basicsr_multigrid.archs.stmfnet_arch import STMFNet, width_entry_parts
from basicsr_multigrid.pruning import legal_width, pruned_widths
from tests.conftest import REPO_ROOT, TINY_WIDTHS, metric_records, run_training, vfi_options, write_options

sys.path.insert(0, osp.join(REPO_ROOT, 'tools'))
import prune_widths  # noqa: E402


def test_widths_are_the_most_channels_any_layer_of_a_group_keeps():
    torch.manual_seed(0)
    network = STMFNet(**dict(TINY_WIDTHS, grid_channels=[6, 6, 6], kernel_channels=8))
    state = network.state_dict()
    for key, keep in (('grid_channels[1]', 2), ('kernel_channels', 5)):
        for name, dim in network.width_groups()[key]:
            state[name].narrow(dim, keep, state[name].shape[dim] - keep).zero_()
    # feature widths: each block is two branches side by side; a branch channel dies with its conv3 and its
    # shortcut projection rows. Keep 10 + 10 of block 1's 16 + 16 (conv3 only zeroed would not be enough).
    for entry in network.width_groups()['feature_channels[1]']:
        for part in width_entry_parts(entry):
            for name, dim in part:
                state[name].narrow(dim, 10, 6).zero_()
    widths = pruned_widths(network, state, threshold=0.0)
    assert widths['grid_channels[1]'] == (6, 2) and widths['kernel_channels'] == (8, 5)
    assert widths['feature_channels[1]'] == (32, 20)
    assert widths['grid_channels[0]'] == (6, 6) and widths['feature_channels[0]'] == (32, 32)


def test_surviving_widths_are_rounded_to_what_the_arch_accepts():
    assert [legal_width(STMFNet.width_rules, 'feature_channels', w) for w in (0, 20, 33, 34)] == [32, 32, 34, 34]
    assert [legal_width(STMFNet.width_rules, 'kernel_channels', w) for w in (0, 5)] == [1, 5]


@pytest.mark.slow
def test_sparse_training_then_prune_widths_writes_a_runnable_student(demo_data, vfi_teacher, tmp_path):
    teacher_weights = str(vfi_teacher / 'experiments' / 'vfi_teacher' / 'models' / 'net_g_latest.pth')
    sparse = vfi_options(demo_data, 'train_STMFNet_sparse_demo.yml', 'sparse', path__pretrain_network_g=teacher_weights,
                         train__optim_g__lr=1e-2, train__optim_g__lambda_=50.0, train__optim_g__prox_iters=2)
    sparse_path = write_options(sparse, tmp_path, 'sparse.yml')
    log = run_training(tmp_path, sparse_path).stdout
    assert 'density: ' in log
    out = str(tmp_path / 'student.yml')
    template = osp.join(REPO_ROOT, 'options', 'train', 'demo', 'train_STMFNetMini_KD_demo.yml')
    assert prune_widths.main(['-opt', sparse_path, '--weights',
                              str(tmp_path / 'experiments' / 'sparse' / 'models' / 'net_g_latest.pth'),
                              '--template', template, '--out', out]) == 0
    with open(out) as f:
        student = yaml.safe_load(f)
    assert student['path']['pretrain_network_t'] == teacher_weights
    assert student['network_t'] == sparse['network_g'] and student['network_g']['type'] == 'STMFNetMini'
    widths, teacher_widths = student['network_g'], sparse['network_g']
    shrunk = [k for k in ('grid_channels', 'tem_channels') if widths[k] != teacher_widths[k]]
    assert shrunk and all(a <= b for k in ('grid_channels', 'tem_channels') for a, b in zip(widths[k], teacher_widths[k]))
    assert widths['use_flow'] is False
    # the written file is a distillation run that trains as it is (pointed at the test data)
    student_run = vfi_options(demo_data, out, 'pruned_student')
    student_run['network_g'] = widths
    run_training(tmp_path, write_options(student_run, tmp_path, 'pruned.yml'))
    assert metric_records(tmp_path, 'pruned_student')[0]['dataset'] == 'demo_vfi_val_teacher'


def test_existing_output_is_kept_and_bad_weights_are_named(tmp_path, capsys):
    out = tmp_path / 'student.yml'
    out.write_text('keep me\n')
    template = osp.join(REPO_ROOT, 'options', 'train', 'demo', 'train_STMFNetMini_KD_demo.yml')
    sparse = osp.join(REPO_ROOT, 'options', 'train', 'demo', 'train_STMFNet_sparse_demo.yml')
    args = ['-opt', sparse, '--weights', str(tmp_path / 'none.pth'), '--template', template, '--out', str(out)]
    assert prune_widths.main(args) == 2
    assert 'exists (use --overwrite' in capsys.readouterr().err and out.read_text() == 'keep me\n'
    assert prune_widths.main(args + ['--overwrite']) == 2
    assert capsys.readouterr().err.strip() == f'error: --weights: file not found: {tmp_path}/none.pth'
    assert out.read_text() == 'keep me\n'
