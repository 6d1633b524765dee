"""The registered distillation models: the distillation part composed with a frame-interpolation model
(ST-MFNet -> ST-MFNet Mini) and with the video model (a wide BasicVSR -> a narrow one, multigrid or not)."""
from basicsr.utils import get_root_logger
from basicsr.utils.registry import DATASET_REGISTRY, MODEL_REGISTRY

from basicsr_multigrid.models.distillation import DistillationMixin
from basicsr_multigrid.models.frame_interpolation_model import FrameInterpolationModel
from basicsr_multigrid.models.multigrid_video_recurrent_model import MultigridVideoRecurrentModel
from basicsr_multigrid.models.runner_contract import builds_one_of


@MODEL_REGISTRY.register()
class DistilledFrameInterpolationModel(DistillationMixin, FrameInterpolationModel):
    """A frame-interpolation student distilled from a frame-interpolation teacher (see DistillationMixin);
    validated per frame."""


@MODEL_REGISTRY.register()
class DistilledVideoRecurrentModel(DistillationMixin, MultigridVideoRecurrentModel):
    """A video SR student distilled from a video SR teacher (see DistillationMixin); validated per clip as
    VideoRecurrentModel. `train.fix_flow` keeps the student's flow / EDVR parts fixed at first and `train.flow_lr_mul`
    scales their LR, as in MultigridVideoRecurrentModel."""


@MODEL_REGISTRY.register()
@builds_one_of(DistilledFrameInterpolationModel, DistilledVideoRecurrentModel)
def KnowledgeDistillationModel(opt):  # noqa: N802  (the name earlier option files use for both)
    """DistilledFrameInterpolationModel when the first dataset gives one target frame per item (frame
    interpolation), else DistilledVideoRecurrentModel."""
    first_dataset = next(iter(opt['datasets'].values()))
    frame_targets = getattr(DATASET_REGISTRY.get(first_dataset['type']), 'one_target_frame', False)
    model_cls = DistilledFrameInterpolationModel if frame_targets else DistilledVideoRecurrentModel
    get_root_logger().info(f'model_type KnowledgeDistillationModel: using {model_cls.__name__}')
    return model_cls(opt)
