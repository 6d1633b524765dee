"""The trained network a tool runs: built from an option file's `network_g`, weights from a checkpoint of any layout
utils/weights.py reads, or both taken from a training run's folder; the device and precision it runs at."""
import glob
import re
from os import path as osp

import torch

from basicsr_multigrid.utils.errors import OptionError
from basicsr_multigrid.utils.option_file import read_option_file
from basicsr_multigrid.utils.weights import load_weights


def experiment_files(folder):
    """(option file, newest net_g weights) of a training run's folder: net_g_latest.pth, else the highest
    iteration."""
    options = sorted(glob.glob(osp.join(folder, '*.yml')), key=osp.getmtime)
    if not options:
        raise OptionError(f'--experiment: no option file (*.yml) in {folder}')
    latest = osp.join(folder, 'models', 'net_g_latest.pth')
    if osp.isfile(latest):
        return options[-1], latest
    numbered = [(int(m.group(1)), f) for f in glob.glob(osp.join(folder, 'models', 'net_g_*.pth'))
                if (m := re.search(r'net_g_(\d+)\.pth$', f))]
    if not numbered:
        raise OptionError(f'--experiment: no net_g weights in {osp.join(folder, "models")}')
    return options[-1], max(numbered)[1]


def build_network(network_opt, option_key='network_g'):
    from basicsr.archs import build_network as build
    if not isinstance(network_opt, dict) or 'type' not in network_opt:
        raise OptionError(f'{option_key}: the option file has no network with a type')
    try:
        return build(dict(network_opt))
    except KeyError:
        raise OptionError(f"{option_key}.type: no arch named {network_opt['type']!r} is registered") from None
    except (TypeError, ValueError) as error:
        raise OptionError(f"{option_key}: {network_opt['type']}: {error}") from None


def trained_network(option_file=None, weights=None, experiment=None, param_key='auto'):
    """(options, network with its weights, the weights file, where in it they were). Either `experiment` or both
    `option_file` and `weights`."""
    if experiment:
        option_file, weights = experiment_files(experiment)
    elif not weights:
        raise OptionError('--weights: required with -opt')
    opt = read_option_file(option_file)
    network = build_network(opt.get('network_g'))
    source = load_weights(network, weights, param_key, what=f"network_g ({opt['network_g']['type']})")
    return opt, network, weights, source


def choose_device(name):
    if name == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if name == 'cuda' and not torch.cuda.is_available():
        raise OptionError('--device: cuda requested but no CUDA device is available')
    return name


PRECISIONS = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


class InferenceNetwork:
    """A network in eval mode on `device`, called without gradients under `precision`'s autocast; outputs come
    back as float32 on the CPU, clamped to [0, 1]."""

    def __init__(self, network, device, precision='fp32'):
        if precision not in PRECISIONS:
            raise OptionError(f'--precision: {precision!r} is not one of {", ".join(PRECISIONS)}')
        if precision == 'fp16' and torch.device(device).type != 'cuda':
            raise OptionError('--precision: fp16 needs a CUDA device; use bf16 or fp32 on CPU')
        self.network = network.eval().to(device)
        self.device, self.dtype = torch.device(device), PRECISIONS[precision]

    @torch.no_grad()
    def __call__(self, inputs):
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            output = self.network(inputs.to(self.device))
        return output.float().clamp_(0, 1).cpu()
