"""OBProxSG: orthant-based proximal SGD for sparse training (Chen et al., "Orthant Based Proximal Stochastic
Gradient Method for l1-Regularized Optimization", 2020), as used by ST-MFNet Mini to sparsify ST-MFNet.

It minimises f(x) + lambda * R(x) in two phases:

- Prox-SG (the first `prox_iters` steps): a gradient step, then the proximal map of R, which sets small
  entries exactly to zero;
- orthant (every later step): a gradient step of f + lambda * R restricted to the non-zero entries, projected
  back onto their orthant; entries that would change sign become zero and stay zero.

`sparsity` picks R:

- `element`: R = ||x||_1, as in the ST-MFNet Mini reference (unstructured; zeros are single weights);
- `channel`: R = sum over channels c of sqrt(p_c) * ||x_c||_2 (group lasso) for parameter groups that are channel
  units (`channel_dims`, see `channel_sparsity_param_groups` and utils/channel_units.py): x_c is channel c of
  every tensor of the unit (for each layer of one width its weights and bias, or the scale and shift of the
  BatchNorm after it) and p_c its number of entries. The orthant step becomes the half-space projection of HSPG
  (same authors): a channel is zeroed when its step would leave the half-space {y: <y, x_c> > eps * ||x_c||^2}.
  Zero channels are what `tools/prune_widths.py` removes. Other parameter groups get no regulariser in this mode.

Lambda per channel, `lambda_scale`:

- `unit_rms` (default): lambda_c = lambda * sqrt(p_c) * r_u, with r_u the RMS of the unit's entries when the run
  starts (saved with the optimizer state, so a resumed run keeps it). A channel of p entries of typical size s has
  norm s * sqrt(p), so a proximal step (gradients aside) shrinks it by lr * lambda * r_u per entry: after steps
  summing to L = sum of lr, the channels whose entries are below L * lambda times their unit's typical size are
  gone. lambda is thus a relative rate, the same for a 3x3x16 and a 3x3x512 layer (sqrt(p)) and for layers whose
  weights are at different scales (r_u: a trained network keeps roughly the scale of its fan-in initialisation),
  so one value means the same at every layer, for a CPU network at 1/4 of the published widths and for the
  published one. Measured why it is needed: with `none` the CPU-scale teacher's units have per-entry RMS 0.040 to
  0.092, so any lambda that removes anything removes whole units in the order of their initial scale.
- `none`: lambda_c = lambda * sqrt(p_c) (Yuan & Lin's group-lasso weight alone): a channel goes when its entries
  are below about L * lambda in absolute terms.

lambda is defined against a mean-reduced loss (training checks that the losses of a channel-sparse run are not
sum-reduced: a summed loss would multiply the gradient, and so divide lambda's effect, by the number of pixels in
a batch).

The reference counts phases in epochs (Np = epochs / 10); here `prox_iters` counts optimizer steps, which is
what BasicSR option files count.
"""
import torch

from basicsr_multigrid.optim import OPTIMIZER_REGISTRY
from basicsr_multigrid.utils.channel_units import layer_units, per_channel_sums

SPARSITY_MODES = ('element', 'channel')
LAMBDA_SCALES = ('unit_rms', 'none')


@OPTIMIZER_REGISTRY.register()
class OBProxSG(torch.optim.Optimizer):

    def __init__(self, params, lr, lambda_=1e-4, epsilon=1e-4, prox_iters=0, sparsity='element', weight_decay=0,
                 lambda_scale='unit_rms'):
        if lr <= 0 or lambda_ < 0 or epsilon < 0 or prox_iters < 0:
            raise ValueError(f'OBProxSG: need lr > 0, lambda_ >= 0, epsilon >= 0, prox_iters >= 0; got lr={lr}, '
                             f'lambda_={lambda_}, epsilon={epsilon}, prox_iters={prox_iters}')
        if sparsity not in SPARSITY_MODES:
            raise ValueError(f'OBProxSG: sparsity {sparsity!r} is not one of {", ".join(SPARSITY_MODES)}')
        if lambda_scale not in LAMBDA_SCALES:
            raise ValueError(f'OBProxSG: lambda_scale {lambda_scale!r} is not one of {", ".join(LAMBDA_SCALES)}')
        if weight_decay:
            raise ValueError('OBProxSG: weight_decay is not supported (the L1 term is the regulariser)')
        # unit_rms: a channel unit's r_u, set at its first step; a group key, so state_dict() carries it
        defaults = dict(lr=lr, lambda_=lambda_, epsilon=epsilon, channel_dims=None, channel_offsets=None, unit=None,
                        unit_rms=None)
        super().__init__(params, defaults)
        if sparsity == 'channel' and all(group['channel_dims'] is None for group in self.param_groups):
            raise ValueError('OBProxSG: sparsity channel needs channel-unit parameter groups (channel_dims; see '
                             'channel_sparsity_param_groups); none of these is one')
        self.prox_iters = prox_iters
        self.sparsity = sparsity
        self.lambda_scale = lambda_scale
        self.step_count = 0  # decides the phase; saved in the state dict so a resumed run keeps its phase
        self._channel_sizes = {}  # group index -> entries per channel (shapes never change)

    def state_dict(self):
        state = super().state_dict()
        state['step_count'] = self.step_count
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        step_count = state_dict.pop('step_count', 0)
        super().load_state_dict(state_dict)
        self.step_count = step_count

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        prox_phase = self.step_count < self.prox_iters
        for index, group in enumerate(self.param_groups):
            if self._regularised(group) and self.sparsity == 'channel':
                if all(param.grad is None for param in group['params']):
                    continue  # frozen (e.g. a flow network before train.fix_flow): no step, no shrinkage
                unit = ChannelUnit(group, self._channel_sizes.get(index), self.lambda_scale == 'unit_rms')
                self._channel_sizes[index] = unit.sizes
                if prox_phase:
                    unit.prox_step()
                else:
                    unit.orthant_step()
                continue
            for param in group['params']:
                if param.grad is None:
                    continue
                if not self._regularised(group):
                    param.add_(param.grad, alpha=-group['lr'])
                elif prox_phase:
                    ElementL1.prox_step(param, group)
                else:
                    ElementL1.orthant_step(param, group)
        self.step_count += 1
        return loss

    def _regularised(self, group):
        return group['lambda_'] != 0 and (self.sparsity == 'element' or group['channel_dims'] is not None)

    def density(self):
        """Fraction of non-zero entries over the regularised parameters (the reference logs it per epoch)."""
        total = nonzero = 0
        for group in self.param_groups:
            if not self._regularised(group):
                continue
            for param in group['params']:
                total += param.numel()
                nonzero += int(torch.count_nonzero(param))
        return nonzero / total if total else 1.0


class ElementL1:
    """R(x) = ||x||_1 entry by entry."""

    @staticmethod
    def prox_step(param, group):
        lr, threshold = group['lr'], group['lr'] * group['lambda_']
        trial = param - lr * param.grad
        param.copy_(trial.sign() * (trial.abs() - threshold).clamp_min(0))

    @staticmethod
    def orthant_step(param, group):
        orthant = param.sign()  # 0 for entries already zero: they get no step and stay zero
        trial = param - group['lr'] * (param.grad + group['lambda_'] * orthant) * orthant.abs()
        param.copy_(torch.where(trial * orthant > group['epsilon'], trial, torch.zeros_like(trial)))


class ChannelUnit:
    """One channel unit (a parameter group with `channel_dims` and `channel_offsets`): its tensors share the
    channel index space of one width; R(x) = sum_c sqrt(p_c) * ||x_c||_2 over it."""

    def __init__(self, group, sizes=None, relative=True):
        self.group = group
        self.layout = [(param, dim, offset, param.shape[dim]) for param, dim, offset in
                       zip(group['params'], group['channel_dims'], group['channel_offsets'])]
        self.width = max(offset + count for _, _, offset, count in self.layout)
        self.sizes = self._per_channel([torch.ones_like(p) for p, *_ in self.layout]) if sizes is None else sizes
        self.lambdas = group['lambda_'] * self.sizes.sqrt() * (self._unit_rms() if relative else 1.0)

    def _unit_rms(self):
        """r_u: the RMS of the unit's entries at its first step, kept in the group from then on."""
        if self.group['unit_rms'] is None:
            params = [param for param, *_ in self.layout]
            squares = sum(float(p.double().pow(2).sum()) for p in params)
            self.group['unit_rms'] = (squares / sum(p.numel() for p in params)) ** 0.5
        return self.group['unit_rms']

    def _per_channel(self, tensors):
        """Sum over each channel's entries, across the unit's tensors: a vector of the width."""
        return per_channel_sums(tensors, self.group['channel_dims'], self.group['channel_offsets'], self.width)

    def _spread(self, vector, index):
        """`vector`'s slice for tensor `index`, shaped to broadcast along that tensor's channel dimension."""
        param, dim, offset, count = self.layout[index]
        shape = [1] * param.dim()
        shape[dim] = count
        return vector[offset:offset + count].to(param.dtype).view(shape)

    def _grads(self):
        return [torch.zeros_like(p) if p.grad is None else p.grad for p, *_ in self.layout]

    def gradient_norms(self):
        """||g_c||: the norm of the loss gradient over each channel's entries (float64, one per channel)."""
        return self._per_channel([grad.pow(2) for grad in self._grads()]).sqrt()

    def prox_step(self):
        lr = self.group['lr']
        trials = [param - lr * grad for (param, *_), grad in zip(self.layout, self._grads())]
        norms = self._per_channel([t.pow(2) for t in trials]).sqrt()
        shrink = (1 - lr * self.lambdas / norms.clamp_min(1e-12)).clamp_min(0)
        for index, trial in enumerate(trials):
            self.layout[index][0].copy_(trial * self._spread(shrink, index))

    def orthant_step(self):
        lr, epsilon = self.group['lr'], self.group['epsilon']
        params = [param for param, *_ in self.layout]
        norms = self._per_channel([p.pow(2) for p in params]).sqrt()
        alive = (norms > 0).double()
        pull = self.lambdas / norms.clamp_min(1e-12)  # lambda_c * d||x_c|| / dx = lambda_c * x / ||x_c||
        trials = [(p - lr * (g + self._spread(pull, i) * p)) * self._spread(alive, i)
                  for i, (p, g) in enumerate(zip(params, self._grads()))]
        inner = self._per_channel([t * p for t, p in zip(trials, params)])
        keep = (inner > epsilon * norms.pow(2)).double()
        for index, trial in enumerate(trials):
            params[index].copy_(trial * self._spread(keep, index))


def channel_sparsity_param_groups(network):
    """Trainable parameters of `network` as optimizer groups: one group per channel unit (the network's
    `channel_units()` when it has width arguments, else every conv / linear layer with its bias, or the
    BatchNorm after it), regularised per channel by OBProxSG's `channel` mode; everything else in one plain group.
    A unit with a frozen tensor is left plain."""
    units = network.channel_units() if hasattr(network, 'channel_units') else layer_units(network)
    params = dict(network.named_parameters())
    groups, in_units = [], set()
    for key, tensors in units.items():
        if not all(params[t.name].requires_grad for t in tensors):
            continue
        groups.append({'params': [params[t.name] for t in tensors], 'unit': key,
                       'channel_dims': [t.dim for t in tensors], 'channel_offsets': [t.offset for t in tensors]})
        in_units.update(t.name for t in tensors)
    plain = [param for name, param in params.items() if param.requires_grad and name not in in_units]
    return groups + ([{'params': plain}] if plain else [])
