"""Mixed-precision training of the generator, set by `train.precision`:

- `fp32` (the default): no autocast;
- `bf16`: the forward pass under `torch.autocast(dtype=bfloat16)` on CPU or CUDA; bf16 has fp32's exponent range,
  so no loss scaling;
- `fp16`: autocast to float16 with a `torch.amp.GradScaler` (CUDA only); the scaler's state is part of the
  training state, so a resumed run continues with the same loss scale.

What stays in fp32: the losses and their reduction (the output is cast to fp32 before any loss), the optimizer
step and its state, validation, and everything autocast itself keeps in fp32 (on CPU: `grid_sample`, i.e. flow
warping; element-wise sums with an fp32 operand, e.g. BasicVSR's bilinear base added to the residual). Modules
named in `train.fp32_modules` (e.g. `[spynet]`) run their whole forward in fp32.

`train.channels_last: true` stores the generator's weights channels-last (NHWC), which oneDNN and cuDNN convolve
faster in some configurations; the outputs are the same up to rounding.
"""
import contextlib

import torch

from basicsr_multigrid.utils.errors import OptionError

PRECISIONS = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def precision_options(opt, device_type):
    """(`train.precision`, `train.fp32_modules`, `train.channels_last`) checked for `device_type` ('cpu' or
    'cuda'). OptionError naming the key."""
    train_opt = opt.get('train') or {}
    precision = train_opt.get('precision', 'fp32')
    if precision not in PRECISIONS:
        raise OptionError(f"train.precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == 'fp16' and device_type != 'cuda':
        raise OptionError('train.precision: fp16 needs a CUDA device (loss scaling for fp16 is a GPU feature); '
                          'on CPU use bf16')
    fp32_modules = train_opt.get('fp32_modules') or []
    if not isinstance(fp32_modules, list) or not all(isinstance(name, str) for name in fp32_modules):
        raise OptionError(f'train.fp32_modules: expected a list of module names, got {fp32_modules!r}')
    if fp32_modules and precision == 'fp32':
        raise OptionError('train.fp32_modules: only meaningful with train.precision bf16 or fp16')
    channels_last = train_opt.get('channels_last', False)
    if not isinstance(channels_last, bool):
        raise OptionError(f'train.channels_last: expected true or false, got {channels_last!r}')
    return precision, fp32_modules, channels_last


def slow_cpu_bf16_warning(precision, device_type):
    """A warning line when bf16 is asked for on a CPU whose vector units lack bf16 (torch's CPU capability below
    AVX512): oneDNN then skips bf16 convolutions and torch runs its slow reference convolution instead (measured
    17-36x slower than fp32 on an AVX2-only EPYC, docs/results/step-demo-cpu.txt); else None."""
    if precision != 'bf16' or device_type != 'cpu':
        return None
    capability = torch.backends.cpu.get_cpu_capability()
    if capability.startswith('AVX512'):
        return None
    return (f'train.precision: bf16 on a CPU with {capability} only (no AVX512-BF16 / AMX): convolutions fall back '
            "to torch's slow reference kernels and train many times slower than fp32; use fp32 on this machine")


class Precision:
    """The autocast context and the backward + optimizer step of one training precision."""

    def __init__(self, precision, device_type):
        self.name, self.device_type = precision, device_type
        self.dtype = PRECISIONS[precision]
        self.scaler = torch.amp.GradScaler(device_type) if precision == 'fp16' else None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward_and_step(self, loss, optimizer, non_finite_gradients):
        """Backward and optimizer step; returns what `non_finite_gradients(parameters)` found (the step is then
        skipped), or None. With fp16 the GradScaler skips overflowed steps itself (None is returned)."""
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)  # skipped by the scaler when the scaled gradients are not finite
            self.scaler.update()
            return None
        loss.backward()
        culprit = non_finite_gradients([p for group in optimizer.param_groups for p in group['params']])
        if culprit is None:
            optimizer.step()
        return culprit

    def state_dict(self):
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_state_dict(self, state):
        if self.scaler is not None and state is not None:
            self.scaler.load_state_dict(state)


def run_in_fp32(network, names, device_type):
    """Make each named submodule of `network` run its forward in fp32 with autocast off (inputs cast to fp32)."""
    for module in named_submodules(network, names):
        module.forward = _fp32_forward(module.forward, device_type)


def named_submodules(network, names):
    """The submodules `names` of `network`; OptionError naming `train.fp32_modules` for one it lacks."""
    modules = []
    for name in names:
        try:
            modules.append(network.get_submodule(name))
        except AttributeError:
            raise OptionError(f'train.fp32_modules: the network has no module {name!r}') from None
    return modules


def _fp32_forward(forward, device_type):
    def forward_in_fp32(*args, **kwargs):
        with torch.autocast(device_type, enabled=False):
            return forward(*(_to_fp32(a) for a in args), **{k: _to_fp32(v) for k, v in kwargs.items()})
    return forward_in_fp32


def _to_fp32(value):
    return value.float() if isinstance(value, torch.Tensor) and value.is_floating_point() else value
