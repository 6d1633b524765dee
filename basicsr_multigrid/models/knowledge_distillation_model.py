"""Knowledge distillation for any BasicSR restoration network: frame interpolation (ST-MFNet -> ST-MFNet Mini)
and video super-resolution (a wide BasicVSR -> a narrow one), with or without a multigrid schedule."""
from collections import OrderedDict

import torch
from basicsr.losses import build_loss
from basicsr.models.sr_model import SRModel
from basicsr.models.video_recurrent_model import VideoRecurrentModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from basicsr_multigrid.models.feature_distillation import FeatureDistillation
from basicsr_multigrid.models.multigrid_mixin import MultigridTrainingMixin
from basicsr_multigrid.models.teacher import load_teacher, require_teacher_for_distillation
from basicsr_multigrid.optim import OPTIMIZER_REGISTRY
from basicsr_multigrid.optim.obproxsg import OBProxSG, channel_sparsity_param_groups
from basicsr_multigrid.utils.errors import OptionError

LOSS_KEYS = ('pixel_opt', 'distill_opt')


@MODEL_REGISTRY.register()
class KnowledgeDistillationModel(MultigridTrainingMixin, VideoRecurrentModel):
    """Trains `network_g` (the student) against the ground truth and against a frozen `network_t` (the teacher).

    - The teacher is built from `network_t`, loaded from `path.pretrain_network_t` (`param_key_t`, default
      `params`; a key mismatch is a one-line error naming the first keys), frozen and kept in eval mode: its
      outputs are targets, computed without gradients. (The ST-MFNet Mini reference ran it in train mode, with
      batch statistics; eval mode makes the targets independent of the batch.)
    - Loss = sum of `train.pixel_opt` losses (student vs ground truth) + `train.distill_opt` losses (student vs
      teacher) + optional `train.feature_distill_opt` (see feature_distillation). Each of the first two is one
      BasicSR loss mapping or a list of them. Seed recipe: pixel_opt LaplacianPyramidLoss weight 0.1, distill_opt
      LaplacianPyramidLoss weight 1.0.
    - Without `network_t` it trains the network on `pixel_opt` alone: the same machinery trains the teacher,
      runs group-sparsity training (`optim_g.type: OBProxSG`) and gives the no-distillation baseline.
    - Inputs are whatever the networks take (`lq`): 4 frames for frame interpolation, a clip for VSR. Validation
      follows the data: one target frame per item (frame interpolation) is scored per frame; a clip per item is
      scored per clip folder as BasicSR's VideoRecurrentModel does. The teacher is validated once per
      validation set, logged as `<name>_teacher`.
    - Multigrid schedules, LR hooks, atomic checkpoints and metric files come from MultigridTrainingMixin.
    """

    def __init__(self, opt):
        self.net_t = None
        self._teacher_validated = set()
        self._validating_teacher = False
        self._frame_mode = False
        self._frame_mode_of = {}  # validation set name -> whether its items have one target frame
        super().__init__(opt)

    # ------------------------------------------------------------------ training set-up
    def init_training_settings(self):
        self.net_g.train()
        train_opt = self.opt['train']
        self.ema_decay = train_opt.get('ema_decay', 0)
        if self.ema_decay > 0:
            raise OptionError('train.ema_decay: not supported by KnowledgeDistillationModel')
        require_teacher_for_distillation(self.opt)
        self.net_t = load_teacher(self.opt, self.device)
        if self.net_t is not None:
            get_root_logger().info(f"Teacher {self.opt['network_t']['type']} loaded from "
                                   f"{self.opt['path']['pretrain_network_t']} (frozen, eval mode)")
        self.gt_losses = self._build_losses('pixel_opt')
        self.distill_losses = self._build_losses('distill_opt')
        if not self.gt_losses and not self.distill_losses:
            raise OptionError('train.pixel_opt: no loss configured (give pixel_opt and/or distill_opt)')
        self.feature_distillation = None
        if train_opt.get('feature_distill_opt'):
            self.feature_distillation = FeatureDistillation(
                train_opt['feature_distill_opt'], self.get_bare_model(self.net_g), self.net_t).to(self.device)
        self.setup_optimizers()
        self.setup_schedulers()

    def _build_losses(self, key):
        spec = self.opt['train'].get(key)
        if spec is None:
            return []
        specs = spec if isinstance(spec, list) else [spec]
        if not all(isinstance(s, dict) and 'type' in s for s in specs):
            raise OptionError(f'train.{key}: expected a loss mapping with a type, or a list of them')
        return [build_loss(dict(s)).to(self.device) for s in specs]

    def setup_optimizers(self):
        """OBProxSG in `channel` mode needs to know which dimension of each weight holds its output channels."""
        optim_opt = dict(self.opt['train']['optim_g'])
        optim_type = optim_opt.pop('type')
        is_obproxsg = optim_type in OPTIMIZER_REGISTRY and OPTIMIZER_REGISTRY.get(optim_type) is OBProxSG
        if is_obproxsg and optim_opt.get('sparsity') == 'channel':
            params = channel_sparsity_param_groups(self.get_bare_model(self.net_g))
        else:
            params = [p for p in self.net_g.parameters() if p.requires_grad]
        self.optimizer_g = self.get_optimizer(optim_type, params, **optim_opt)
        self.optimizers.append(self.optimizer_g)

    # ------------------------------------------------------------------ training step
    def optimize_parameters(self, current_iter):
        self._freeze_flow_network(current_iter)
        self.optimizer_g.zero_grad()
        self.output = self.net_g(self.lq)
        loss_dict = OrderedDict()
        total = 0
        for index, loss in enumerate(self.gt_losses):
            loss_dict[_loss_name('l_gt', index, self.gt_losses)] = value = loss(self.output, self.gt)
            total = total + value
        if self.net_t is not None:
            with torch.no_grad():
                teacher_output = self.net_t(self.lq)
            for index, loss in enumerate(self.distill_losses):
                loss_dict[_loss_name('l_distill', index, self.distill_losses)] = value = loss(self.output, teacher_output)
                total = total + value
            if self.feature_distillation is not None:
                loss_dict['l_feature'] = value = self.feature_distillation()
                total = total + value
        total.backward()
        self.optimizer_g.step()
        self.log_dict = self.reduce_loss_dict(loss_dict)
        if isinstance(self.optimizer_g, OBProxSG):
            self.log_dict['density'] = self.optimizer_g.density()
        self.after_optimize_step(current_iter)

    def _freeze_flow_network(self, current_iter):
        """`train.fix_flow` as in VideoRecurrentModel: a VSR student's flow / EDVR parts stay fixed at first."""
        if not self.fix_flow_iter:
            return
        if current_iter == 1:
            for name, param in self.net_g.named_parameters():
                if 'spynet' in name or 'edvr' in name:
                    param.requires_grad_(False)
        elif current_iter == self.fix_flow_iter:
            self.net_g.requires_grad_(True)

    # ------------------------------------------------------------------ validation
    def validation(self, dataloader, current_iter, tb_logger, save_img=False):
        dataset = dataloader.dataset
        name = dataset.opt['name']
        if name not in self._frame_mode_of:  # decided once per set: it reads (decodes) a whole item
            self._frame_mode_of[name] = _one_target_frame_per_item(dataset)
        self._frame_mode = self._frame_mode_of[name]
        if self.net_t is not None and name not in self._teacher_validated:
            self._teacher_validated.add(name)
            dataset.opt['name'] = f'{name}_teacher'
            self._validating_teacher = True
            try:
                super().validation(dataloader, current_iter, tb_logger, save_img=False)
            finally:
                dataset.opt['name'] = name
                self._validating_teacher = False
        super().validation(dataloader, current_iter, tb_logger, save_img)

    def test(self):
        network = self.net_t if self._validating_teacher else self.net_g
        was_training = network.training
        network.eval()
        with torch.no_grad():
            self.output = network(self.lq)
        network.train(was_training)
        self.center_frame_only = self.opt['val'].get('center_frame_only', False)
        if self.center_frame_only and self.output.dim() == 5:
            self.output = self.output[:, self.lq.size(1) // 2]

    def dist_validation(self, dataloader, current_iter, tb_logger, save_img):
        if self._frame_mode:
            return SRModel.dist_validation(self, dataloader, current_iter, tb_logger, save_img)
        return super().dist_validation(dataloader, current_iter, tb_logger, save_img)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        if self._frame_mode:
            return SRModel.nondist_validation(self, dataloader, current_iter, tb_logger, save_img)
        return super().nondist_validation(dataloader, current_iter, tb_logger, save_img)

    def _log_validation_metric_values(self, current_iter, dataset_name, tb_logger):
        if not self._frame_mode:
            return super()._log_validation_metric_values(current_iter, dataset_name, tb_logger)
        SRModel._log_validation_metric_values(self, current_iter, dataset_name, tb_logger)
        self._append_metrics_record(current_iter, dataset_name)

    def _mean_metric_values(self):
        if self._frame_mode:
            return dict(self.metric_results)
        return super()._mean_metric_values()


def _loss_name(prefix, index, losses):
    return prefix if len(losses) == 1 else f'{prefix}_{index}'


def _one_target_frame_per_item(dataset):
    """Frame interpolation (and centre-frame VSR) sets give one (C, H, W) target per item; video sets a clip."""
    return dataset[0]['gt'].dim() == 3
