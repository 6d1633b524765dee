"""ST-MFNet Mini (Morris, Danier, Zhang, Anantrasirichai & Bull, ICIP 2023): the distilled student of ST-MFNet.

The same pipeline as :class:`~basicsr_multigrid.archs.stmfnet_arch.STMFNet` with the widths of
``crispianm/ST-MFNet-Mini``'s ``student_STMFNet`` and without the PWC-Net / softmax-splatting branch:
1,822,063 parameters (-91.3 %). Its parameter names match the reference student's, so its checkpoint loads
without renaming.
"""
from basicsr.utils.registry import ARCH_REGISTRY

from basicsr_multigrid.archs.stmfnet_arch import STMFNet


@ARCH_REGISTRY.register()
class STMFNetMini(STMFNet):
    """ST-MFNet with the student's defaults; see :class:`STMFNet` for the arguments and the forward contract."""

    def __init__(self,
                 feature_channels=(32, 64, 96, 128),
                 kernel_channels=30,
                 grid_channels=(16, 32, 46),
                 tem_channels=(16, 24, 32, 40),
                 tem_fuse_channels=8,
                 kernel_size=5,
                 dilation=1,
                 use_flow=False,
                 flow_estimator='pwcnet',
                 pad_multiple=128,
                 fused_ops=True):
        super().__init__(
            feature_channels=feature_channels,
            kernel_channels=kernel_channels,
            grid_channels=grid_channels,
            tem_channels=tem_channels,
            tem_fuse_channels=tem_fuse_channels,
            kernel_size=kernel_size,
            dilation=dilation,
            use_flow=use_flow,
            flow_estimator=flow_estimator,
            pad_multiple=pad_multiple,
            fused_ops=fused_ops)
