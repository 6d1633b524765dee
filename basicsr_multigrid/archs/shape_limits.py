"""The clip shapes a video network can train on, declared by the arch, for checking a schedule before training.

An arch class declares its limits with a `shape_limits(network_opt)` classmethod returning `ShapeLimits`; users'
own archs can do the same. basicsr's IconVSR and EDVR are not this package's classes, so their limits are
declared here, keyed by class (subclasses inherit them). With `small_input_flow` (notes B17, B18) the flow-based
networks train at every shape of the paper's schedule; what remains are hard structural limits.
"""
from dataclasses import dataclass
from typing import Optional

from basicsr.archs.basicvsr_arch import IconVSR
from basicsr.archs.edvr_arch import EDVR
from basicsr.utils.registry import ARCH_REGISTRY


@dataclass(frozen=True)
class ShapeLimits:
    min_num_frame: int = 1
    lq_size_multiple: int = 1
    fixed_num_frame: Optional[int] = None  # the only clip length the network is built for


def _iconvsr_limits(network_opt):
    # its EDVR feature extractor reads 2 * temporal_padding + 1 neighbouring frames around key frames
    return ShapeLimits(min_num_frame=2 * network_opt.get('temporal_padding', 2) + 1)


def _edvr_limits(network_opt):
    # PCD alignment downsamples twice (x4 with pre-deblurring); TSA fusion is built for one clip length
    return ShapeLimits(lq_size_multiple=16 if network_opt.get('with_predeblur', False) else 4,
                       fixed_num_frame=network_opt.get('num_frame', 5))


BASICSR_ARCH_LIMITS = {IconVSR: _iconvsr_limits, EDVR: _edvr_limits}


def network_shape_limits(network_opt):
    """The ShapeLimits of the `network_g` options (no limits for an unknown or unregistered arch)."""
    arch_cls = ARCH_REGISTRY.get(network_opt['type']) if network_opt.get('type') in ARCH_REGISTRY else None
    if hasattr(arch_cls, 'shape_limits'):
        return arch_cls.shape_limits(network_opt)
    declare = next((BASICSR_ARCH_LIMITS[cls] for cls in getattr(arch_cls, '__mro__', ()) if cls in BASICSR_ARCH_LIMITS),
                   None)
    return declare(network_opt) if declare else ShapeLimits()
