"""Knowledge distillation as a part that composes with a model class that trains `net_g` on `lq` / `gt`:
`DistillationMixin` before FrameInterpolationModel or MultigridVideoRecurrentModel (see
knowledge_distillation_model.py for the registered combinations)."""
import contextlib
from collections import OrderedDict

import torch
from basicsr.losses import build_loss
from basicsr.utils import get_root_logger

from basicsr_multigrid.models.feature_distillation import FeatureDistillation
from basicsr_multigrid.models.teacher import (batch_statistics, distill_gate, load_teacher,
                                              require_teacher_for_distillation, teacher_batchnorm)
from basicsr_multigrid.models.validation_sets import RenamedLoader
from basicsr_multigrid.utils.errors import OptionError


class DistillationMixin:
    """Trains `network_g` (the student) against the ground truth and against a frozen `network_t` (the teacher).

    - The teacher is built from `network_t`, loaded from `path.pretrain_network_t` (`param_key_t`, default
      `params`; a key mismatch is a one-line error naming the first keys), frozen and kept in eval mode: its
      outputs are targets, computed without gradients. Its BatchNorm layers use their running statistics unless
      `train.teacher_batchnorm: batch`, which normalises with each batch's statistics (running statistics left as
      they are), as the ST-MFNet Mini reference's train-mode teacher did, for distillation and the teacher's
      validation alike: a network trained with batches of 2 can fail on some inputs with its running statistics
      (README).
    - Loss = sum of `train.pixel_opt` losses (student vs ground truth, logged `l_gt`) + `train.distill_opt` losses
      (student vs teacher, `l_distill`) + optional `train.feature_distill_opt` (`l_feature`, see
      feature_distillation). Each of the first two is one BasicSR loss mapping or a list of them. Seed recipe:
      pixel_opt LaplacianPyramidLoss weight 0.1, distill_opt LaplacianPyramidLoss weight 1.0.
    - `train.distill_gate: teacher_better` applies `distill_opt` only to the batch items whose teacher output is
      closer to the ground truth (mean absolute error) than the student's current output, so that a teacher
      never pulls the student towards its mistakes; the kept share is logged `distill_kept`. Each item's loss is
      computed alone and the kept ones are summed (`reduction: sum`) or divided by the batch size (`mean`), so
      with every item kept the loss equals the ungated one. Feature distillation is not gated.
    - Without `network_t` it trains the network on `pixel_opt` alone (the no-distillation baseline).
    - `validate_teacher` is its own step: the runner calls it once per validation set, logged `<name>_teacher`.
    """
    validates_teacher = True  # runner contract (models/runner_contract.py)
    net_t = None  # also when testing (test.py): init_training_settings, which loads the teacher, does not run
    teacher_under_test = False

    def init_training_settings(self):
        self.net_g.train()
        self.setup_step()
        if self.opt['train'].get('ema_decay', 0) > 0:
            raise OptionError('train.ema_decay: not supported with distillation')
        self.ema_decay = 0
        require_teacher_for_distillation(self.opt)
        self.teacher_batchnorm = teacher_batchnorm(self.opt)
        self.net_t = load_teacher(self.opt, self.device)
        if self.net_t is not None:
            get_root_logger().info(f"Teacher {self.opt['network_t']['type']} loaded from "
                                   f"{self.opt['path']['pretrain_network_t']} (frozen, eval mode, BatchNorm with "
                                   f"{self.teacher_batchnorm} statistics)")
        self.gt_losses = self._build_losses('pixel_opt')
        self.distill_losses = self._build_losses('distill_opt')
        self.distill_gate = distill_gate(self.opt)
        if not self.gt_losses and not self.distill_losses:
            raise OptionError('train.pixel_opt: no loss configured (give pixel_opt and/or distill_opt)')
        self.feature_distillation = None
        if self.opt['train'].get('feature_distill_opt'):
            self.feature_distillation = FeatureDistillation(
                self.opt['train']['feature_distill_opt'], self.get_bare_model(self.net_g), self.net_t).to(self.device)
        self.setup_optimizers()
        self.setup_schedulers()

    def prepare_step(self, current_iter):
        super().prepare_step(current_iter)
        if self.feature_distillation is not None:
            self.feature_distillation.record()  # this step's student and teacher forwards

    def _build_losses(self, key):
        spec = self.opt['train'].get(key)
        if spec is None:
            return []
        specs = spec if isinstance(spec, list) else [spec]
        if not all(isinstance(s, dict) and 'type' in s for s in specs):
            raise OptionError(f'train.{key}: expected a loss mapping with a type, or a list of them')
        return [build_loss(dict(s)).to(self.device) for s in specs]

    def generator_losses(self):
        """(total, {name: logged value}) for GeneratorStepMixin's step: the student's output against the ground
        truth and against the teacher's (computed under the run's precision, compared in fp32)."""
        loss_dict = OrderedDict()
        for index, loss in enumerate(self.gt_losses):
            loss_dict[_loss_name('l_gt', index, self.gt_losses)] = loss(self.output, self.gt)
        kept = None
        if self.net_t is not None:
            with torch.no_grad(), self.precision.autocast(), self._teacher_statistics():
                teacher_output = self.net_t(self.lq)
            teacher_output = teacher_output.float()
            kept = self._teacher_better(teacher_output) if self.distill_gate == 'teacher_better' else None
            for index, loss in enumerate(self.distill_losses):
                loss_dict[_loss_name('l_distill', index, self.distill_losses)] = (
                    loss(self.output, teacher_output) if kept is None
                    else _gated_loss(loss, self.output, teacher_output, kept))
            if self.feature_distillation is not None:
                loss_dict['l_feature'] = self.feature_distillation()
        total = sum(loss_dict.values())
        if kept is not None:
            loss_dict['distill_kept'] = kept.mean()  # logged, not a loss
        return total, loss_dict

    def _teacher_statistics(self):
        return batch_statistics(self.net_t) if self.teacher_batchnorm == 'batch' else contextlib.nullcontext()

    def _teacher_better(self, teacher_output):
        """Per batch item: 1.0 where the teacher's mean absolute error to the ground truth is below the
        student's, else 0.0."""
        with torch.no_grad():
            item_dims = tuple(range(1, self.gt.dim()))
            teacher_error = (teacher_output - self.gt).abs().mean(dim=item_dims)
            student_error = (self.output.detach() - self.gt).abs().mean(dim=item_dims)
        return (teacher_error < student_error).to(self.output.dtype)

    def validate_teacher(self, dataloader, current_iter, tb_logger):
        """Validate the teacher on `dataloader`, reported as `<name>_teacher` (the dataset itself is unchanged).
        Returns False, validating nothing, without a teacher."""
        if self.net_t is None:
            return False
        self.teacher_under_test = True
        try:
            self.validation(RenamedLoader(dataloader, f"{dataloader.dataset.opt['name']}_teacher"), current_iter,
                            tb_logger, save_img=False)
        finally:
            self.teacher_under_test = False
        return True

    def test(self):
        """The student as the base model tests it; the teacher plainly, one forward pass (no `val.flip_seq`)."""
        if not self.teacher_under_test:
            return super().test()
        with torch.no_grad(), self._teacher_statistics():
            self.output = self.net_t(self.lq)
        self.center_frame_only = self.opt['val'].get('center_frame_only', False)  # video validation reads it
        if self.center_frame_only and self.output.dim() == 5:
            self.output = self.output[:, self.lq.size(1) // 2]


def _gated_loss(loss, output, target, kept):
    """`loss` of the kept items, each computed alone: summed for `reduction: sum`, else over the whole batch
    size, so that keeping every item gives the ungated value."""
    per_item = torch.stack([loss(output[i:i + 1], target[i:i + 1]) for i in range(len(kept))])
    total = (per_item * kept).sum()
    return total if getattr(loss, 'reduction', 'mean') == 'sum' else total / len(kept)


def _loss_name(prefix, index, losses):
    return prefix if len(losses) == 1 else f'{prefix}_{index}'
