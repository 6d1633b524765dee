"""Reading the surviving channel widths off a group-sparsity-trained network, and the student options they give.

The sparse run (`optim_g.type: OBProxSG` with `sparsity: channel`) drives whole output channels to exactly zero.
The arch says where each width lives (`width_groups()`, see `archs/stmfnet_arch.py` and `width_entry_parts`) and
which widths it accepts (`width_rules`: {argument: (minimum, multiple)}). A layer keeps the channels whose weights
have an L2 norm above the threshold (a width made of several layers side by side, such as UMSResNeXt's two
branches, keeps a channel while any of its layers does), and the new width is the most any layer of that group
keeps, rounded up to what the arch accepts.
"""
import copy
import inspect

import torch
from basicsr.utils.registry import ARCH_REGISTRY

from basicsr_multigrid.archs.stmfnet_arch import width_entry_parts
from basicsr_multigrid.utils.errors import OptionError


def network_arguments(network_opt):
    """The arch class and its full keyword arguments (the option's values over the constructor defaults)."""
    network_opt = dict(network_opt)
    arch = network_opt.pop('type')
    cls = ARCH_REGISTRY.get(arch)
    defaults = {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
                if p.default is not inspect.Parameter.empty}
    arguments = dict(defaults, **network_opt)
    return cls, {k: list(v) if isinstance(v, tuple) else v for k, v in arguments.items()}


def prunable_network(network_opt):
    """The arch of `network_opt` built at its trained widths; OptionError if it cannot tell its widths."""
    cls, arguments = network_arguments(network_opt)
    if not hasattr(cls, 'width_groups'):
        raise OptionError(f"network_g.type: {network_opt['type']} has no width_groups(); cannot prune it")
    return cls(**arguments)


def missing_width_weights(network, state):
    """Names of the weights width_groups() reads that `state` lacks."""
    return [name for entries in network.width_groups().values() for entry in entries
            for part in width_entry_parts(entry) for name, _ in part if name not in state]


def channel_alive(weight, out_dim, threshold):
    other = [d for d in range(weight.dim()) if d != out_dim]
    return weight.float().pow(2).sum(dim=other).sqrt() > threshold


def entry_channels(entry, state, threshold):
    """(channels, surviving channels) of one width_groups() entry: parts side by side, each part's channels
    alive while any of its layers keeps them."""
    total = kept = 0
    for part in width_entry_parts(entry):
        alive = torch.stack([channel_alive(state[name], dim, threshold) for name, dim in part]).any(dim=0)
        total, kept = total + alive.numel(), kept + int(alive.sum())
    return total, kept


def pruned_widths(network, state, threshold):
    """{width key: (trained width, surviving width)}: the most channels any entry of the group keeps."""
    widths = {}
    for key, entries in network.width_groups().items():
        counts = [entry_channels(entry, state, threshold) for entry in entries]
        widths[key] = (counts[0][0], max(kept for _, kept in counts))
    return widths


def legal_width(width_rules, argument, width):
    minimum, multiple = width_rules.get(argument, (1, 1))
    width = max(width, minimum)
    return -(-width // multiple) * multiple


def student_arguments(template_network_opt, widths):
    """The student arch class and its arguments: the template's, with each surviving width made legal."""
    cls, arguments = network_arguments(template_network_opt)
    rules = getattr(cls, 'width_rules', {})
    for key, (_, kept) in widths.items():
        if key.endswith(']'):  # 'name[i]' as width_groups() spells it
            name, index = key[:-1].split('[')
            arguments[name][int(index)] = legal_width(rules, name, kept)
        else:
            arguments[key] = legal_width(rules, key, kept)
    return cls, arguments


def student_options(template, sparse_opt, student_network_opt, teacher_path, name):
    """The distillation run of the student: the template with the student network, the sparse run's network as
    teacher and `teacher_path` as its checkpoint."""
    opt = copy.deepcopy(template)
    opt['name'] = name
    opt['network_g'] = student_network_opt
    opt['network_t'] = copy.deepcopy(sparse_opt['network_g'])
    opt.setdefault('path', {})['pretrain_network_t'] = teacher_path
    return opt
