"""OBProxSG: orthant-based proximal SGD for sparse training (Chen et al., "Orthant Based Proximal Stochastic
Gradient Method for l1-Regularized Optimization", 2020), as used by ST-MFNet Mini to sparsify ST-MFNet.

It minimises f(x) + lambda * R(x) in two phases:

- Prox-SG (the first `prox_iters` steps): a gradient step, then the proximal map of R, which sets small
  entries exactly to zero;
- orthant (every later step): a gradient step of f + lambda * R restricted to the non-zero entries, projected
  back onto their orthant; entries that would change sign become zero and stay zero.

`sparsity` picks R:

- `element`: R = ||x||_1, as in the ST-MFNet Mini reference (unstructured; zeros are single weights);
- `channel`: R = sum over output channels of ||x_c||_2 (group lasso), for parameter groups that carry a
  `channel_dim` (this package's models add it for conv / linear weights: see `channel_sparsity_param_groups`).
  The orthant step becomes the half-space projection of HSPG (same authors): a channel is zeroed when its
  step would leave the half-space {y: <y, x_c> > eps * ||x_c||^2}. Zero channels are what `tools/prune_widths.py`
  removes. Parameter groups without `channel_dim` get no regulariser in this mode.

The reference counts phases in epochs (Np = epochs / 10); here `prox_iters` counts optimizer steps, which is
what BasicSR option files count.
"""
import torch
from torch import nn

from basicsr_multigrid.optim import OPTIMIZER_REGISTRY

SPARSITY_MODES = ('element', 'channel')


@OPTIMIZER_REGISTRY.register()
class OBProxSG(torch.optim.Optimizer):

    def __init__(self, params, lr, lambda_=1e-4, epsilon=1e-4, prox_iters=0, sparsity='element', weight_decay=0):
        if lr <= 0 or lambda_ < 0 or epsilon < 0 or prox_iters < 0:
            raise ValueError(f'OBProxSG: need lr > 0, lambda_ >= 0, epsilon >= 0, prox_iters >= 0; got lr={lr}, '
                             f'lambda_={lambda_}, epsilon={epsilon}, prox_iters={prox_iters}')
        if sparsity not in SPARSITY_MODES:
            raise ValueError(f'OBProxSG: sparsity {sparsity!r} is not one of {", ".join(SPARSITY_MODES)}')
        if weight_decay:
            raise ValueError('OBProxSG: weight_decay is not supported (the L1 term is the regulariser)')
        defaults = dict(lr=lr, lambda_=lambda_, epsilon=epsilon, channel_dim=None)
        super().__init__(params, defaults)
        if sparsity == 'channel' and all(group['channel_dim'] is None for group in self.param_groups):
            raise ValueError('OBProxSG: sparsity channel needs parameter groups with a channel_dim (see '
                             'channel_sparsity_param_groups); none of these has one')
        self.prox_iters = prox_iters
        self.sparsity = sparsity
        self.step_count = 0  # decides the phase; saved in the state dict so a resumed run keeps its phase

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
        for group in self.param_groups:
            regulariser = self._regulariser(group)
            for param in group['params']:
                if param.grad is None:
                    continue
                if regulariser is None:
                    param.add_(param.grad, alpha=-group['lr'])
                elif prox_phase:
                    regulariser.prox_step(param, group)
                else:
                    regulariser.orthant_step(param, group)
        self.step_count += 1
        return loss

    def _regulariser(self, group):
        if group['lambda_'] == 0:
            return None
        if self.sparsity == 'element':
            return ElementL1
        return None if group['channel_dim'] is None else ChannelGroupLasso

    def density(self):
        """Fraction of non-zero entries over the regularised parameters (the reference logs it per epoch)."""
        total = nonzero = 0
        for group in self.param_groups:
            if self._regulariser(group) is None:
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


class ChannelGroupLasso:
    """R(x) = sum_c ||x_c||_2 over the slices x_c of `channel_dim` (one output channel each)."""

    @staticmethod
    def _channel_norms(tensor, dim):
        other_dims = [d for d in range(tensor.dim()) if d != dim]
        return tensor.pow(2).sum(dim=other_dims, keepdim=True).sqrt()

    @classmethod
    def prox_step(cls, param, group):
        lr, dim = group['lr'], group['channel_dim']
        trial = param - lr * param.grad
        norms = cls._channel_norms(trial, dim)
        shrink = (1 - lr * group['lambda_'] / norms.clamp_min(1e-12)).clamp_min(0)
        param.copy_(trial * shrink)

    @classmethod
    def orthant_step(cls, param, group):
        lr, dim = group['lr'], group['channel_dim']
        norms = cls._channel_norms(param, dim)
        alive = (norms > 0).to(param.dtype)
        direction = param / norms.clamp_min(1e-12)
        trial = (param - lr * (param.grad + group['lambda_'] * direction)) * alive
        inner = (trial * param).sum(dim=[d for d in range(param.dim()) if d != dim], keepdim=True)
        keep = inner > group['epsilon'] * norms.pow(2)
        param.copy_(trial * keep.to(param.dtype))


def output_channel_dim(module):
    """The weight dimension that indexes a layer's output channels, or None for layers without channels."""
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return 1
    if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
        return 0
    return None


def channel_sparsity_param_groups(network):
    """Trainable parameters of `network` as optimizer groups: conv / linear weights tagged with the dimension
    of their output channels (regularised per channel by OBProxSG's `channel` mode), everything else plain."""
    by_dim = {0: [], 1: [], None: []}
    for module in network.modules():
        dim = output_channel_dim(module)
        for name, param in module.named_parameters(recurse=False):
            if param.requires_grad:
                by_dim[dim if name == 'weight' else None].append(param)
    return [{'params': params, 'channel_dim': dim} for dim, params in by_dim.items() if params]
