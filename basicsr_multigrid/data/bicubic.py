"""MATLAB-style bicubic `imresize` (antialiased when downscaling), how REDS and Vimeo-90K LR frames were made,
and the LQ frame of an 8-bit GT frame."""
import math

import numpy as np


def _cubic(x, a=-0.5):
    """Keys cubic convolution kernel (a=-0.5 as in MATLAB)."""
    x = np.abs(x)
    x2, x3 = x * x, x * x * x
    near = ((a + 2) * x3 - (a + 3) * x2 + 1) * (x <= 1)
    far = (a * x3 - 5 * a * x2 + 8 * a * x - 4 * a) * ((x > 1) & (x <= 2))
    return near + far


def _resize_taps(in_len, out_len, scale):
    """Input indices and weights, both (out_len, taps), of a 1-D MATLAB bicubic resize."""
    kernel_width = 4.0
    stretch = 1.0
    if scale < 1:  # antialiasing: widen the kernel by 1/scale when downscaling
        kernel_width /= scale
        stretch = scale
    # Output pixel centre i (1-based) maps to u in 1-based input coordinates, MATLAB's convention.
    u = np.arange(1, out_len + 1, dtype=np.float64) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based input indices
    weights = stretch * _cubic((u[:, None] - idx) * stretch)
    weights /= weights.sum(axis=1, keepdims=True)
    # Symmetric boundary (edge pixel repeated, like MATLAB's padarray 'symmetric'), periodic in 2*in_len.
    j = (idx - 1).astype(np.int64) % (2 * in_len)
    j = np.where(j >= in_len, 2 * in_len - 1 - j, j)
    return j, weights


def _resize_axis(img, axis, scale):
    x = np.moveaxis(img, axis, 0)
    out_len = int(math.ceil(x.shape[0] * scale))
    j, weights = _resize_taps(x.shape[0], out_len, scale)
    bcast = (out_len,) + (1,) * (x.ndim - 1)
    # Gather + weighted sum instead of a dense matrix product: no BLAS, so it is fast even where
    # multi-threaded OpenBLAS thrashes on few cores, and bit-identical whatever the thread count.
    out = np.zeros((out_len,) + x.shape[1:])
    for k in range(j.shape[1]):
        out += weights[:, k].reshape(bcast) * x[j[:, k]]
    return np.moveaxis(out, 0, axis)


def imresize_bicubic(img, scale):
    """MATLAB ``imresize(img, scale, 'bicubic')`` (antialiased) for a float image in [0, 1].

    ``img`` is HxW or HxWxC; output size is ceil(H*scale) x ceil(W*scale). Works in float64 and does not
    round or clip (callers round to uint8 once, at the end).
    """
    img = np.asarray(img, dtype=np.float64)
    return _resize_axis(_resize_axis(img, 0, scale), 1, scale)


def to_uint8(img):
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def bicubic_lq(gt, scale):
    """The LQ frame of an 8-bit RGB GT frame: MATLAB bicubic 1/scale downscale, rounded to 8 bits once."""
    return to_uint8(imresize_bicubic(gt / 255.0, 1 / scale))
