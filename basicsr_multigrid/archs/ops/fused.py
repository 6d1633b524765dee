"""Compiled (fused) CPU versions of the warping ops, for inference and validation.

Eager PyTorch runs AdaCoF as four gathers and a dozen element-wise passes over (B, C, F*F, H, W) tensors; on a
CPU that is memory-bound (2.5 s for one 512x512 frame on one thread). torch.compile (inductor) fuses the index
arithmetic, the gathers and the weighted sum into one C++ loop: 0.24 s, same values within 1e-6. Measured for
training (forward + backward) the compiled op gained only 1.3-1.6x, for about 20 s of compilation per process, so
the fused path is taken only where no gradient is recorded.

`dynamic=True`: one compilation serves every frame size (ST-MFNet calls AdaCoF at three scales). The first call
in a process compiles (a few seconds with inductor's on-disk cache warm, ~15 s cold).
"""
import functools

import torch

from basicsr_multigrid.archs.ops.op_macs import counting
from basicsr_multigrid.utils.cpu_compiler import cpu_compiler_problem


@functools.lru_cache(maxsize=None)
def cpu_compiler_available():
    return cpu_compiler_problem() is None


@functools.lru_cache(maxsize=None)
def _compiled(function):
    return torch.compile(function, dynamic=True)


def call_fused(function, *tensors, **options):
    """`function(*tensors, **options)`, compiled when that pays: CPU tensors, no gradient recorded, a compiler;
    eager while MACs are counted (the eager op counts them) or a jit trace runs (it cannot trace compiled code)."""
    eager = (torch.is_grad_enabled() or counting() or torch.jit.is_tracing()
             or any(t.device.type != 'cpu' for t in tensors))
    if eager or not cpu_compiler_available():
        return function(*tensors, **options)
    return _compiled(function)(*tensors, **options)
