"""Reading the surviving channel widths off a group-sparsity-trained network, and the student options they give.

The sparse run (`optim_g.type: OBProxSG` with `sparsity: channel`) drives whole channels of each width to exactly
zero. The arch says where each width lives (`channel_units()`, see utils/channel_units.py: every layer of the width
with its bias, or the scale and shift of the BatchNorm after it) and which widths it accepts (`width_rules`:
{argument: (minimum, multiple)}). Channel c of a width survives while its unit's entries at c have a joint L2 norm
above the threshold: the union over the width's layers (they are summed or concatenated with each other), a bias or
shift alone keeping it.
The new width is the number of surviving channels, rounded up to what the arch accepts.
"""
import copy
import inspect
from typing import NamedTuple

import torch
from basicsr.utils.registry import ARCH_REGISTRY

from basicsr_multigrid.utils.channel_units import per_channel_sums, width_argument, width_offsets
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


def parameter_count(network_opt):
    """Learnable parameters of the network `network_opt` describes."""
    cls, arguments = network_arguments(network_opt)
    return sum(p.numel() for p in cls(**arguments).parameters())


def prunable_network(network_opt):
    """The arch of `network_opt` built at its trained widths; OptionError if it cannot tell its widths."""
    cls, arguments = network_arguments(network_opt)
    if not hasattr(cls, 'channel_units'):
        raise OptionError(f"network_g.type: {network_opt['type']} has no width arguments (channel_units()); cannot "
                          'prune it')
    return cls(**arguments)


def check_state_matches(network, state, source):
    """OptionError naming the first tensor of the network's channel units that `state` lacks or holds in another
    shape (a checkpoint of another arch or other widths)."""
    params = dict(network.named_parameters())
    for tensors in network.channel_units().values():
        for tensor in tensors:
            if tensor.name not in state:
                raise OptionError(f'{source} does not match the network (no {tensor.name})')
            if state[tensor.name].shape != params[tensor.name].shape:
                found, expected = tuple(state[tensor.name].shape), tuple(params[tensor.name].shape)
                raise OptionError(f'{source} does not match the network ({tensor.name}: shape {found}, the network '
                                  f'has {expected})')


def surviving_channels(network, state, threshold):
    """{width key: (trained width, [indices of the surviving channels])}."""
    survivors = {}
    for key, tensors in network.channel_units().items():
        width = max(t.offset + state[t.name].shape[t.dim] for t in tensors)
        squares = per_channel_sums([state[t.name].double().pow(2) for t in tensors], [t.dim for t in tensors],
                                   [t.offset for t in tensors], width)
        survivors[key] = (width, torch.nonzero(squares.sqrt() > threshold).flatten().tolist())
    return survivors


def pruned_widths(network, state, threshold):
    """{width key: (trained width, surviving width)}."""
    return widths_of(surviving_channels(network, state, threshold))


def widths_of(survivors):
    """{width key: (trained width, surviving width)} of `surviving_channels`' result."""
    return {key: (width, len(kept)) for key, (width, kept) in survivors.items()}


def check_no_width_emptied(widths, lambda_):
    """OptionError naming the first width whose every channel was pruned, with a smaller lambda to try (when the
    sparse run's lambda is known)."""
    for key, (width, kept) in widths.items():
        if kept == 0:
            hint = (f'train.optim_g.lambda_ {lambda_:g} is too large for this width (try {lambda_ / 4:g})'
                    if lambda_ is not None else 'train the sparse run with a smaller train.optim_g.lambda_')
            raise OptionError(f'{key}: all {width} channels were pruned; {hint}')


class ReadOff(NamedTuple):
    """A sparse run's student: its network option, {width key: (trained, surviving width)} and the surviving
    channels ({width key: (trained width, [indices])})."""
    student_network: dict
    widths: dict
    survivors: dict


def read_off(sparse_opt, state, template_network_opt, threshold=0.0, keep_flow=False, source='sparse run weights'):
    """The student of the sparse run `sparse_opt` trained to `state` (its weights, named `source` in errors): the
    template's arch at the surviving widths, with the template's flow branch (`keep_flow` adds one where it has
    none). OptionError for weights of another network and for a width with no channel left."""
    network = prunable_network(sparse_opt['network_g'])
    check_state_matches(network, state, source)
    survivors = surviving_channels(network, state, threshold)
    widths = widths_of(survivors)
    check_no_width_emptied(widths, sparse_opt['train']['optim_g'].get('lambda_'))
    # a copy: student_arguments changes the width lists of the options it is given
    _, arguments = student_arguments(copy.deepcopy(template_network_opt), widths)
    if keep_flow:
        arguments['use_flow'] = True
    return ReadOff(dict(type=template_network_opt['type'], **arguments), widths, survivors)


def initial_state_of(sparse_opt, state, read):
    """The student's initial weights cut from the surviving channels of `state`: `(weights, names taken from it)`."""
    return pruned_initial_state(sparse_opt['network_g'], state, read.survivors, read.student_network)


def legal_width(width_rules, argument, width):
    minimum, multiple = width_rules.get(argument, (1, 1))
    width = max(width, minimum)
    return -(-width // multiple) * multiple


def student_arguments(template_network_opt, widths):
    """The student arch class and its arguments: the template's, with each surviving width made legal. OptionError
    when the arch's smallest legal width is wider than the trained one."""
    cls, arguments = network_arguments(template_network_opt)
    rules = getattr(cls, 'width_rules', {})
    for key, (trained, kept) in widths.items():
        name, index = width_argument(key)
        width = legal_width(rules, name, kept)
        if width > trained:
            raise OptionError(f'{key}: the student {cls.__name__} needs at least {width} channels, more than the '
                              f'{trained} of the sparse-trained network')
        if index is None:
            arguments[name] = width
        else:
            arguments[name][index] = width
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


def pruned_initial_state(teacher_network_opt, teacher_state, survivors, student_network_opt):
    """The student's initial weights cut from the (sparse-trained) teacher's: `(state, kept_from_teacher)`.

    Each dimension of each tensor is matched to the width it indexes by building the teacher arch with one width
    argument widened at a time: a dimension that grows with exactly one width, by that width's growth, is indexed
    by the surviving channels of that width (filled up, in order, with pruned channels where the student's legal
    width is larger); one that grows with none is copied whole. Tensors with a dimension that follows a width
    non-linearly (the ResNeXt bottlenecks of a changed feature width) keep the student's own initialisation.
    """
    cls, arguments = network_arguments(teacher_network_opt)
    probe = dict(arguments, use_flow=False)  # the flow branch has no width arguments
    base = _tensor_shapes(cls, probe)
    # wider than every width, so that no layer whose input and output widths differ loses its shortcut conv
    widening = 2 * (1 + max(width for width, _ in survivors.values()))
    growth = {}  # (name, dim) -> [(width key, growth)]
    for key in survivors:
        wider = _tensor_shapes(cls, widened_arguments(probe, key, widening))
        for name, shape in base.items():
            for dim, (size, wider_size) in enumerate(zip(shape, wider[name])):
                if size != wider_size:
                    growth.setdefault((name, dim), []).append((key, wider_size - size))
    offsets = width_offsets(cls(**probe))
    student_cls, student_arguments = network_arguments(student_network_opt)
    student_state = student_cls(**student_arguments).state_dict()
    state, kept = {}, []
    for name, target in student_state.items():
        tensor = teacher_state.get(name)
        if tensor is None:
            continue
        for dim in range(tensor.dim()):
            indices = _dimension_indices(growth.get((name, dim), []), survivors, widening, tensor.shape[dim],
                                         target.shape[dim], offsets.get(name, 0))
            if indices is False:
                break
            if indices is not None:
                tensor = tensor.index_select(dim, torch.tensor(indices, dtype=torch.long))
        else:
            if tensor.shape == target.shape:
                state[name] = tensor.clone()
                kept.append(name)
    return dict(student_state, **state), kept


def _dimension_indices(grown_by, survivors, widening, size, target_size, part_offset):
    """Teacher indices of one dimension for the student: None (copy whole), a list, or False (cannot map)."""
    if not grown_by:
        return None if size == target_size else False
    if all(len(survivors[key][1]) == survivors[key][0] for key, _ in grown_by):  # no channel pruned
        return None if size == target_size else False
    if len(grown_by) != 1:
        return False
    key, grown = grown_by[0]
    width, kept = survivors[key]
    if grown == widening and size == width:
        channels = list(range(width))
    elif grown == widening // 2 and size == width // 2:  # one part of a width made of two parts side by side
        channels = list(range(part_offset, part_offset + size))
    else:
        return False
    kept = set(kept)
    alive = [c for c in channels if c in kept]
    filler = [c for c in channels if c not in kept]
    indices = sorted(alive + filler[:max(0, target_size - len(alive))])
    return [channels.index(c) for c in indices] if len(indices) == target_size else False


def _tensor_shapes(cls, arguments):
    return {name: tuple(t.shape) for name, t in cls(**arguments).state_dict().items()}


def widened_arguments(arguments, key, extra):
    """A copy of arch `arguments` with the width `key` ('name' or 'name[i]') grown by `extra` channels."""
    arguments = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in arguments.items()}
    name, index = width_argument(key)
    if index is None:
        arguments[name] += extra
    else:
        arguments[name][index] += extra
    return arguments
