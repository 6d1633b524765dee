"""Channel units: which tensors hold the channels of each width argument, for group-sparsity training and pruning.

An arch with width arguments lists, in `width_groups()`, the weights whose output channels are each width:
`{width argument: [entry, ...]}`, an entry being a `(weight name, output dim)` pair, or a tuple of parts side by
side along the channels (each part a tuple of pairs whose channels live together). A channel of a width is the
same channel in every entry of its group: the layers of one width are summed or concatenated with each other
(residual sums, additive skips), so channel c is only gone when every layer's channel c is.

`channel_units(network)` holds, for each layer of a width, the tensors that decide whether its output channels are
alive: the layer's weight and bias, or, where a BatchNorm normalises the layer's output, that BatchNorm's scale and
shift instead. A channel normalised by a BatchNorm outputs scale * normalised + shift, so it is exactly zero (in
train and eval mode alike) when both are zero, whatever the layer's weights; and the layer's weights cannot decide
it: the BatchNorm makes the output of each channel invariant to the scale of its weight row, so the training loss
never resists a group lasso shrinking that row: every row of such a layer shrinks alike, whatever its channel's
importance. This is network slimming's criterion (Liu et al., 2017), as a group of scale and shift. OBProxSG's
channel mode shrinks each unit's channel as one group; the width read-off keeps a channel while any tensor of its
unit is non-zero there (a zero weight row with a non-zero bias still outputs a constant map the next layer reads).
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
    norm_of = _batchnorms(network)
    units = OrderedDict()
    for key, name, dim, offset in _width_layers(network, params):
        units.setdefault(key, []).extend(_deciding_tensors(name, dim, offset, params, norm_of))
    return units


def width_offsets(network):
    """{parameter name: offset} of every tensor of the width layers (weights, biases, BatchNorm scales and
    shifts): where its channels start in its width (parts side by side)."""
    params = dict(network.named_parameters())
    norm_of = _batchnorms(network)
    offsets = {}
    for _, name, _, offset in _width_layers(network, params):
        norm = norm_of.get(name)
        for tensor in [name, _bias_of(name)] + ([f'{norm}.weight', f'{norm}.bias'] if norm else []):
            if tensor in params:
                offsets[tensor] = offset
    return offsets


def layer_units(network):
    """Channel units of a network without width arguments: every conv / linear layer is its own unit (the output
    channels of its weight and bias, or of the BatchNorm after it)."""
    params = dict(network.named_parameters())
    norm_of = _batchnorms(network)
    units = OrderedDict()
    for module_name, module in network.named_modules():
        dim = output_channel_dim(module)
        if dim is None:
            continue
        weight = f'{module_name}.weight' if module_name else 'weight'
        units[module_name or 'network'] = _deciding_tensors(weight, dim, 0, params, norm_of)
    return units


def _width_layers(network, params):
    """(width key, weight name, output dim, offset of its channels in the width) of every layer of every width."""
    for key, entries in network.width_groups().items():
        for entry in entries:
            offset = 0
            for part in width_entry_parts(entry):
                for name, dim in part:
                    yield key, name, dim, offset
                offset += params[part[0][0]].shape[part[0][1]]


def output_channel_dim(module):
    """The weight dimension that indexes a layer's output channels, or None for layers without channels."""
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return 1
    if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
        return 0
    return None


def _deciding_tensors(weight_name, dim, offset, params, norm_of):
    """The tensors whose channels decide a layer's output channels: its BatchNorm's scale and shift when an affine
    BatchNorm normalises its output, else its weight and bias."""
    norm = norm_of.get(weight_name)
    if norm is not None and f'{norm}.weight' in params:
        return [ChannelTensor(f'{norm}.weight', 0, offset), ChannelTensor(f'{norm}.bias', 0, offset)]
    bias = _bias_of(weight_name)
    return [ChannelTensor(weight_name, dim, offset)] + ([ChannelTensor(bias, 0, offset)] if bias in params else [])


def _bias_of(weight_name):
    return weight_name[:-len('weight')] + 'bias'


def _batchnorms(network):
    """{conv weight name: name of the BatchNorm applied to its output}: in an nn.Sequential the first BatchNorm
    after the conv before any other conv-like layer (activations and gates in between keep the channels), or
    `bnN` next to `convN` in the same parent (ResNeXt blocks)."""
    norms = {}
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
                norms[f'{prefix}{name}.weight'] = f'{prefix}{follower[0]}'
    return norms


def _next_batchnorm(followers):
    for name, module in followers:
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            return name, module
        if output_channel_dim(module) is not None:
            return None
    return None
