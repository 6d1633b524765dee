"""Pure-PyTorch replacements for the CuPy kernels used by ST-MFNet (AdaCoF, softmax splatting, correlation).

The originals are CUDA-only CuPy kernel strings; these run on any device, in any floating dtype, and get their
gradients from autograd. Each module's docstring states the reference semantics it reproduces.
"""
from basicsr_multigrid.archs.ops.adacof import adacof, adacof_padding, replicate_pad_for_adacof
from basicsr_multigrid.archs.ops.correlation import correlation
from basicsr_multigrid.archs.ops.softsplat import softsplat

__all__ = ['adacof', 'adacof_padding', 'replicate_pad_for_adacof', 'correlation', 'softsplat']
