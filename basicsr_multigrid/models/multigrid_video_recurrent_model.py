from basicsr.models.video_recurrent_model import VideoRecurrentModel
from basicsr.utils.registry import MODEL_REGISTRY

from basicsr_multigrid.models.checkpoint_mixin import AtomicCheckpointMixin
from basicsr_multigrid.models.optimizer_setup import setup_generator_optimizer
from basicsr_multigrid.optim import uses_channel_groups


@MODEL_REGISTRY.register()
class MultigridVideoRecurrentModel(AtomicCheckpointMixin, VideoRecurrentModel):
    """BasicSR's VideoRecurrentModel (BasicVSR, IconVSR, BasicVSR++) with checkpoints a run can always resume from
    exactly (AtomicCheckpointMixin). The multigrid schedule, LR hooks and run records are the runner's: any
    BasicSR model trains on a schedule; this one also resumes bit-exactly. OBProxSG's channel sparsity gets its
    per-channel parameter groups (else VideoRecurrentModel's, with `train.flow_lr_mul`). Several validation sets
    work (basicsr sizes its per-clip metric table once, for the first set, and fails on the next)."""
    validates_several_sets = True

    def dist_validation(self, dataloader, current_iter, tb_logger, save_img):
        folders = set(dataloader.dataset.data_info['folder'])
        if set(getattr(self, 'metric_results', folders)) != folders:
            del self.metric_results  # basicsr (and B6) build the table of this set's clips
        return super().dist_validation(dataloader, current_iter, tb_logger, save_img)

    def setup_optimizers(self):
        if uses_channel_groups(self.opt['train']['optim_g']):
            setup_generator_optimizer(self)
        else:
            super().setup_optimizers()
