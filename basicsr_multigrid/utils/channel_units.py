"""Channel units: which tensors hold the channels of each width argument, for group-sparsity training and pruning.

An arch with width arguments lists, in `width_groups()`, the weights whose output channels are each width:
`{width argument: [entry, ...]}`, an entry being a `(weight name, output dim)` pair, or a tuple of parts side by
side along the channels (each part a tuple of pairs whose channels live together). A channel of a width is the
same channel in every entry of its group: the layers of one width are summed or concatenated with each other
(residual sums, additive skips), so channel c is only gone when every layer's channel c is.

`channel_units(network)` adds what else keeps a channel alive: the layer's bias and the shift of the BatchNorm that
normalises its output (a zero weight row with a non-zero bias or shift still outputs a constant map the next layer
reads). OBProxSG's channel mode shrinks each unit's channel as one group; the width read-off keeps a channel
while any tensor of its unit is non-zero there.
"""
from collections import OrderedDict
from typing import NamedTuple

import torch
from torch import nn


class ChannelTensor(NamedTuple):
    name: str    # parameter name
    dim: int     # the dimension that indexes the width's channels
    offset: int  # first channel of the width this tensor holds (parts side by side)


def width_entry_parts(entry):
    """A width_groups() entry as parts (concatenated along channels), each a list of (name, dim) pairs whose
    channels live together; a plain (name, dim) pair is one part of one pair."""
    return [[entry]] if isinstance(entry[0], str) else [list(part) for part in entry]


def per_channel_sums(tensors, dims, offsets, width):
    """Sum of each channel's entries over tensors that share one width's channel index space (tensor k's
    channels at `offsets[k]` onwards along `dims[k]`): a float64 vector of length `width`."""
    total = torch.zeros(width, dtype=torch.float64, device=tensors[0].device)
    for tensor, dim, offset in zip(tensors, dims, offsets):
        count = tensor.shape[dim]
        total[offset:offset + count] += tensor.movedim(dim, 0).reshape(count, -1).sum(dim=1).double()
    return total


def width_argument(key):
    """A width key as (argument name, list index or None): 'grid_channels[2]' -> ('grid_channels', 2)."""
    if key.endswith(']'):
        name, index = key[:-1].split('[')
        return name, int(index)
    return key, None


def channel_units(network):
    """`{width argument: [ChannelTensor, ...]}` of a network with `width_groups()`; see the module docstring."""
    params = dict(network.named_parameters())
    shift_of = _batchnorm_shifts(network)
    units = OrderedDict()
    for key, entries in network.width_groups().items():
        tensors = []
        for entry in entries:
            offset = 0
            for part in width_entry_parts(entry):
                for name, dim in part:
                    tensors.append(ChannelTensor(name, dim, offset))
                    tensors.extend(ChannelTensor(extra, 0, offset) for extra in _companions(name, params, shift_of))
                offset += params[part[0][0]].shape[part[0][1]]
        units[key] = tensors
    return units


def layer_units(network):
    """Channel units of a network without width arguments: every conv / linear layer is its own unit (output
    channels of the weight, its bias and the shift of the BatchNorm after it)."""
    params = dict(network.named_parameters())
    shift_of = _batchnorm_shifts(network)
    units = OrderedDict()
    for module_name, module in network.named_modules():
        dim = output_channel_dim(module)
        if dim is None:
            continue
        weight = f'{module_name}.weight' if module_name else 'weight'
        units[module_name or 'network'] = [ChannelTensor(weight, dim, 0)] + [
            ChannelTensor(extra, 0, 0) for extra in _companions(weight, params, shift_of)]
    return units


def output_channel_dim(module):
    """The weight dimension that indexes a layer's output channels, or None for layers without channels."""
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return 1
    if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
        return 0
    return None


def _companions(weight_name, params, shift_of):
    prefix = weight_name[:-len('weight')]
    return [name for name in (f'{prefix}bias', shift_of.get(weight_name)) if name in params]


def _batchnorm_shifts(network):
    """{conv weight name: bias name of the BatchNorm applied to its output}: in an nn.Sequential the first
    BatchNorm after the conv before any other conv-like layer (activations and gates in between keep the
    channels), or `bnN` next to `convN` in the same parent (ResNeXt blocks)."""
    shifts = {}
    for parent_name, parent in network.named_modules():
        children = list(parent.named_children())
        prefix = f'{parent_name}.' if parent_name else ''
        for index, (name, child) in enumerate(children):
            if output_channel_dim(child) is None:
                continue
            if isinstance(parent, nn.Sequential):
                follower = _next_batchnorm(children[index + 1:])
            else:
                follower = next(((n, c) for n, c in children if name.startswith('conv') and n == 'bn' + name[4:]),
                                None)
            if follower is not None and isinstance(follower[1], nn.modules.batchnorm._BatchNorm):
                shifts[f'{prefix}{name}.weight'] = f'{prefix}{follower[0]}.bias'
    return shifts


def _next_batchnorm(followers):
    for name, module in followers:
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            return name, module
        if output_channel_dim(module) is not None:
            return None
    return None
