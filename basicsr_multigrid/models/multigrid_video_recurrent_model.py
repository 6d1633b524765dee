from os import path as osp

from basicsr.models.video_recurrent_model import VideoRecurrentModel
from basicsr.utils import get_root_logger, imwrite, tensor2img
from basicsr.utils.dist_util import get_dist_info
from basicsr.utils.registry import MODEL_REGISTRY

from basicsr_multigrid.models.checkpoint_mixin import AtomicCheckpointMixin
from basicsr_multigrid.models.ema_validation import EmaValidationMixin
from basicsr_multigrid.models.generator_step import GeneratorStepMixin
from basicsr_multigrid.models.optimizer_setup import setup_generator_optimizer
from basicsr_multigrid.optim import uses_channel_groups


@MODEL_REGISTRY.register()
class MultigridVideoRecurrentModel(AtomicCheckpointMixin, EmaValidationMixin, GeneratorStepMixin, VideoRecurrentModel):
    """BasicSR's VideoRecurrentModel (BasicVSR, IconVSR, BasicVSR++) with checkpoints a run can always resume from
    exactly (AtomicCheckpointMixin) and one training step with `train.precision` (GeneratorStepMixin). The
    multigrid schedule, LR hooks and run records are the runner's: any BasicSR model trains on a schedule; this one
    also resumes bit-exactly. OBProxSG's channel sparsity gets its
    channel-unit parameter groups; `train.flow_lr_mul` applies with any optimizer. Several validation sets
    work (basicsr sizes its per-clip metric table once, for the first set, and fails on the next). `train.fix_flow`
    holds wherever a run starts (basicsr freezes the flow network only at iteration 1, so a run resumed before
    fix_flow trained it)."""
    validates_several_sets = True  # runner contract (models/runner_contract.py)

    def prepare_step(self, current_iter):
        """The flow network and EDVR feature extractor train from iteration `train.fix_flow` on, not before."""
        if not self.fix_flow_iter:
            return
        trainable = current_iter >= self.fix_flow_iter
        for name, param in self.net_g.named_parameters():
            if 'spynet' in name or 'edvr' in name:
                param.requires_grad_(trainable)

    def dist_validation(self, dataloader, current_iter, tb_logger, save_img):
        if not getattr(dataloader.dataset, 'has_gt', True):
            return self.save_outputs(dataloader.dataset)
        folders = set(dataloader.dataset.data_info['folder'])
        if set(getattr(self, 'metric_results', folders)) != folders:
            del self.metric_results  # basicsr (and B6) build the table of this set's clips
        return super().dist_validation(dataloader, current_iter, tb_logger, save_img)

    def save_outputs(self, dataset):
        """Clips without ground truth (footage to upscale): the output frames are written, nothing is measured.
        Under DDP each rank takes every world_size-th clip."""
        rank, world_size = get_dist_info()
        suffix = self.opt['val'].get('suffix') or self.opt['name']
        folder = osp.join(self.opt['path']['visualization'], dataset.opt['name'])
        for index in range(rank, len(dataset), world_size):
            item = dataset[index]
            self.feed_data({'lq': item['lq'][None]})
            self.test()
            for frame, image in enumerate(self.output[0]):
                imwrite(tensor2img([image]), osp.join(folder, item['folder'], f'{frame:08d}_{suffix}.png'))
            del self.lq, self.output
        get_root_logger().info(f"{dataset.opt['name']}: no ground truth; {len(dataset)} clips upscaled into {folder}")

    def setup_optimizers(self):
        if uses_channel_groups(self.opt['train']['optim_g']):
            setup_generator_optimizer(self, flow_lr_mul=self.opt['train'].get('flow_lr_mul', 1))
        else:
            super().setup_optimizers()
