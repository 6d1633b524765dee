"""Checkpoint interop: BasicSR `params` / `params_ema`, ST-MFNet's official `state_dict`, plain state dicts and
`module.` prefixes load strictly into the network (checked on the weights in memory); mismatches are one line."""
import logging
import re

import pytest
import torch
from basicsr.archs.basicvsr_arch import BasicVSR

from basicsr_multigrid.archs.stmfnet_arch import STMFNet
from basicsr_multigrid.utils.errors import OptionError
from basicsr_multigrid.utils.weights import WHOLE_FILE, load_weights, read_weights
from tests.conftest import TINY_DISTINCT_WIDTHS, VIDEO_MODEL_OPTIONS

pytestmark = pytest.mark.usefixtures('one_torch_thread')


def tiny_basicvsr():
    return BasicVSR(num_feat=8, num_block=1, spynet_path=None)


def filled(network, value):
    """The network's own key names (those of the released checkpoints) with every tensor set to `value`."""
    return {name: torch.full_like(tensor, value) if tensor.is_floating_point() else tensor
            for name, tensor in network.state_dict().items()}


def assert_loaded(network, value):
    floats = [tensor for tensor in network.state_dict().values() if tensor.is_floating_point()]
    assert floats and all(torch.all(tensor == value) for tensor in floats)


@pytest.mark.parametrize('layout, param_key, expected_value, expected_source', [
    (lambda s: {'params': s(1.0), 'params_ema': s(2.0)}, 'auto', 2.0, 'params_ema'),  # BasicSR, EMA preferred
    (lambda s: {'params': s(1.0), 'params_ema': s(2.0)}, 'params', 1.0, 'params'),
    (lambda s: {'params': s(1.0)}, 'params_ema', 1.0, 'params'),  # BasicSR's fallback to params
    (lambda s: {'params': {f'module.{k}': v for k, v in s(3.0).items()}}, 'auto', 3.0, 'params'),  # saved from DDP
    (lambda s: s(4.0), 'auto', 4.0, WHOLE_FILE),  # torch.save(net.state_dict())
])
def test_basicsr_and_plain_layouts_load_strictly(tmp_path, layout, param_key, expected_value, expected_source):
    network = tiny_basicvsr()
    path = str(tmp_path / 'w.pth')
    torch.save(layout(lambda value: filled(network, value)), path)
    assert load_weights(network, path, param_key) == expected_source
    assert_loaded(network, expected_value)


# Key names of danier97/ST-MFNet's models/stmfnet.py (KernelEstimation's Subnet_* Sequentials, Metric, UNet3d_18).
OFFICIAL_STMFNET_KEYS = ('get_kernel.moduleWeight1_ds.0.weight', 'get_kernel.moduleBeta2_us.7.weight',
                         'metric.paramScale', 'dyntex_generator.outconv.1.weight',
                         'dyntex_generator.feature_fuse.1.running_mean', 'gauss_kernel')


def test_stmfnet_official_layout_state_dict_with_module_prefixes(tmp_path):
    network = STMFNet(**{**TINY_DISTINCT_WIDTHS, 'pad_multiple': 64})
    assert set(OFFICIAL_STMFNET_KEYS) <= set(network.state_dict())
    path = str(tmp_path / 'stmfnet.pth')
    torch.save({'state_dict': {f'module.{k}': v for k, v in filled(network, 0.5).items()}, 'epoch': 70}, path)
    assert load_weights(network, path) == 'state_dict'
    assert_loaded(network, 0.5)


def test_mismatches_are_one_line_naming_the_first_keys(tmp_path):
    network = tiny_basicvsr()
    state = filled(network, 1.0)
    del state['conv_last.bias']
    state['extra.weight'] = torch.zeros(1)
    state['conv_hr.weight'] = torch.zeros(8, 8, 1, 1)
    path = str(tmp_path / 'w.pth')
    torch.save({'params': state}, path)
    with pytest.raises(OptionError) as error:
        load_weights(network, path, what='BasicVSR (network_g)')
    assert str(error.value) == (f'--weights: {path} does not match BasicVSR (network_g): missing keys conv_last.bias; '
                                'unexpected keys extra.weight; 1 shape mismatches, first conv_hr.weight: checkpoint '
                                '(8, 8, 1, 1) vs network (64, 64, 3, 3)')
    assert '\n' not in str(error.value)


@pytest.mark.parametrize('content, param_key, expected', [
    ({'params': {}}, 'auto', "'params' does not hold a state dict"),
    ({'optimizer': {'lr': 1}}, 'auto', 'has none of params_ema, params, state_dict and is not a state dict '
                                       '(its keys: optimizer)'),
    ({'params': {'w': torch.ones(1)}}, 'state_dict', "has no 'state_dict' entry (its keys: params)"),
    ([1, 2], 'auto', 'holds a list, not a state dict'),
])
def test_files_without_weights_are_one_line(tmp_path, content, param_key, expected):
    path = str(tmp_path / 'w.pth')
    torch.save(content, path)
    with pytest.raises(OptionError, match=f'^--weights: {re.escape(path)}.*{re.escape(expected)}'):
        read_weights(path, param_key)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(OptionError, match='^--weights: file not found: '):
        read_weights(str(tmp_path / 'nope.pth'))
    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(b'not a checkpoint')
    with pytest.raises(OptionError, match=f'^--weights: cannot read {re.escape(str(corrupt))}: '):
        read_weights(str(corrupt))


def test_pretrain_network_g_with_param_key_auto_takes_any_layout(tmp_path, caplog):
    from basicsr.models import build_model
    network = BasicVSR(**{k: v for k, v in VIDEO_MODEL_OPTIONS['network_g'].items() if k != 'type'})
    path = str(tmp_path / 'official.pth')
    torch.save({'state_dict': {f'module.{k}': v for k, v in filled(network, 0.25).items()}}, path)
    opt = dict(VIDEO_MODEL_OPTIONS, model_type='MultigridVideoRecurrentModel', is_train=False,
               path={'pretrain_network_g': path, 'param_key_g': 'auto', 'strict_load_g': True})
    logger = logging.getLogger('basicsr')  # basicsr's logger does not propagate to caplog's root handler
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level('INFO', logger='basicsr'):
            model = build_model(opt)
    finally:
        logger.removeHandler(caplog.handler)
    assert_loaded(model.net_g, 0.25)
    assert f'Loading BasicVSR from {path}: state_dict' in caplog.text
