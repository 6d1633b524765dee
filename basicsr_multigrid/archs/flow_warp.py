"""basicsr's ``flow_warp`` with its base grid made on the input's device, for every flow-warping network trained here.

basicsr 1.4.2's ``basicsr.archs.arch_util.flow_warp`` builds its sampling grid from
``torch.arange(0, h).type_as(x)``: the arange is made on the CPU and copied to x's device at every call, two
blocking host-to-device copies per warp. On a GPU that is a host sync per copy, and BasicVSR, IconVSR and
BasicVSR++ warp dozens of times per forward (SpyNet warps at each of its six pyramid levels for every frame pair,
the propagation branches once per frame and direction), so the GPU idles while the host waits.

:func:`flow_warp` here is a drop-in replacement with basicsr's signature, defaults and arithmetic, so its
outputs (and gradients) equal basicsr's bit for bit on the same device: the only change is that the base grid
comes from :func:`base_grid`, which makes it with ``torch.arange(..., device=x.device)`` (no copy, no host read)
and caches it per (h, w, device, dtype). Like basicsr's, the grid is float32 with the integers rounded through
x's dtype first (exact up to 2049 px in fp16 and 257 px in bf16; beyond that basicsr's grid is rounded, and so is
this one, to keep the outputs equal).

basicsr's own modules bind ``flow_warp`` by name at import (``from .arch_util import flow_warp``), so
:func:`use_device_grid_flow_warp` rebinds that name in each of them (``BASICSR_MODULES``); it runs once when
``basicsr_multigrid.archs`` is imported. ``basicsr.archs.arch_util.flow_warp`` itself is left untouched, as the
reference the tests compare with. This package's own archs import :func:`flow_warp` from here.
"""
import functools
import importlib

import torch
from torch.nn import functional as F

# the basicsr modules whose networks warp with flow_warp, bound by name: SpyNet (every flow network's
# estimator), BasicVSR and IconVSR, BasicVSR++ (its second-order alignment), and TOFlow
BASICSR_MODULES = ('basicsr.archs.spynet_arch', 'basicsr.archs.basicvsr_arch', 'basicsr.archs.basicvsrpp_arch',
                   'basicsr.archs.tof_arch')
GRID_CACHE_SIZE = 64  # distinct (h, w, device, dtype); a 180x320 grid is 0.5 MB


def make_grid(h, w, device, dtype):
    """The (h, w, 2) float32 grid of pixel coordinates (x, y) that basicsr's flow_warp makes for an input of size
    h x w on ``device`` with ``dtype`` (integers rounded through ``dtype``, then float32), made on ``device``.

    Built outside inference mode and without autograd history, so one grid serves training, ``no_grad`` and
    ``inference_mode`` callers alike.
    """
    with torch.inference_mode(False), torch.no_grad():
        grid_y = torch.arange(0, h, device=device).to(dtype)
        grid_x = torch.arange(0, w, device=device).to(dtype)
        grid_y, grid_x = torch.meshgrid(grid_y, grid_x, indexing='ij')
        return torch.stack((grid_x, grid_y), 2).float()


@functools.lru_cache(maxsize=GRID_CACHE_SIZE)
def base_grid(h, w, device, dtype):
    """:func:`make_grid`, cached per (h, w, device, dtype). Shared between calls: never modify it in place."""
    return make_grid(h, w, device, dtype)


def flow_warp(x, flow, interp_mode='bilinear', padding_mode='zeros', align_corners=True):
    """Warp an image or feature map with optical flow, as ``basicsr.archs.arch_util.flow_warp`` does.

    Args:
        x (Tensor): Tensor with size (n, c, h, w).
        flow (Tensor): Tensor with size (n, h, w, 2), in pixels (x, y).
        interp_mode (str): 'nearest' or 'bilinear'. Default: 'bilinear'.
        padding_mode (str): 'zeros' or 'border' or 'reflection'. Default: 'zeros'.
        align_corners (bool): passed to grid_sample. Default: True (the grid is normalised for True either way,
            as in basicsr).

    Returns:
        Tensor: Warped image or feature map.
    """
    assert x.size()[-2:] == flow.size()[1:3]
    _, _, h, w = x.size()
    # under torch.compile the grid is traced into the graph (dynamo would skip the cache and warn about it)
    grid = (make_grid if torch.compiler.is_compiling() else base_grid)(h, w, x.device, x.dtype)
    vgrid = grid + flow
    # scale grid to [-1, 1], with basicsr's exact operations (so the rounding is the same)
    vgrid_x = 2.0 * vgrid[:, :, :, 0] / max(w - 1, 1) - 1.0
    vgrid_y = 2.0 * vgrid[:, :, :, 1] / max(h - 1, 1) - 1.0
    vgrid_scaled = torch.stack((vgrid_x, vgrid_y), dim=3)
    return F.grid_sample(x, vgrid_scaled, mode=interp_mode, padding_mode=padding_mode, align_corners=align_corners)


def use_device_grid_flow_warp():
    """Rebind ``flow_warp`` in every module of ``BASICSR_MODULES`` to this module's (idempotent). Tests compare with
    basicsr's by binding ``basicsr.archs.arch_util.flow_warp`` back, e.g. with pytest's monkeypatch."""
    for name in BASICSR_MODULES:
        module = importlib.import_module(name)
        module.flow_warp = flow_warp
