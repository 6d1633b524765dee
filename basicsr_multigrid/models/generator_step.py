"""One training step of a model that trains `net_g` on `lq` / `gt`, top to bottom, in one place: the models of
this package put `GeneratorStepMixin` before their BasicSR base class instead of BasicSR's SRModel step.

    prepare_step (freeze parts) -> zero grads -> forward under the run's precision (compiled with
    `train.compile`) -> losses in fp32 -> [non-finite loss: skip] -> backward -> [non-finite gradient norm: skip]
    -> optimizer step (loss-scaled for fp16) -> log (with OBProxSG's weight density, skipped steps) -> EMA update

The losses are SRModel's (`pixel_opt`, `perceptual_opt`); DistillationMixin supplies its own `generator_losses`.
"""
import contextlib
from collections import OrderedDict

import torch
from basicsr.utils import get_root_logger

from basicsr_multigrid.models.compilation import CompileMeter, compile_network, compile_options, eager
from basicsr_multigrid.models.divergence import DivergenceGuard, max_bad_steps
from basicsr_multigrid.models.precision import Precision, precision_options, run_in_fp32, slow_cpu_bf16_warning


class GeneratorStepMixin:
    """Put before SRModel (or a subclass); see the module docstring."""
    owns_training_step = True  # runner contract (models/runner_contract.py)
    compile_meter = None  # a CompileMeter when net_g is compiled

    def init_training_settings(self):
        self.setup_step()
        super().init_training_settings()

    def setup_step(self):
        """`self.precision` from `train.precision`; channels-last weights, fp32 modules and torch.compile applied to
        net_g."""
        precision, fp32_modules, channels_last = precision_options(self.opt, self.device.type)
        compiling = compile_options(self.opt, self.device.type)
        network = self.get_bare_model(self.net_g)
        if channels_last:
            network.to(memory_format=torch.channels_last)
        run_in_fp32(network, fp32_modules, self.device.type)
        self.precision = Precision(precision, self.device.type)
        warning = slow_cpu_bf16_warning(precision, self.device.type)
        if warning:
            get_root_logger().warning(warning)
        self.divergence = DivergenceGuard(max_bad_steps(self.opt))
        if compiling is not None:
            compile_network(network, compiling)
            self.compile_meter = CompileMeter()
        get_root_logger().info(f'Training precision: {precision}'
                               + (f", fp32 modules: {', '.join(fp32_modules)}" if fp32_modules else '')
                               + (', channels-last weights' if channels_last else '')
                               + (f', torch.compile {compiling}' if compiling is not None else ''))

    def prepare_step(self, current_iter):
        """Before each step, e.g. keep a part of the network fixed for the first iterations; nothing here."""

    def optimize_parameters(self, current_iter):
        self.prepare_step(current_iter)
        self.optimizer_g.zero_grad()
        with self.compile_meter or contextlib.nullcontext():
            with self.precision.autocast():
                self.output = self.net_g(self.lq)
            self.output = self.output.float()
            total, loss_dict = self.generator_losses()
            culprit = self.divergence.first_non_finite_loss(loss_dict)
            if culprit is None:
                culprit = self.precision.backward_and_step(total, self.optimizer_g,
                                                           self.divergence.non_finite_gradients)
        if self.compile_meter is not None and self.compile_meter.last_step_seconds:
            get_root_logger().info(f'torch.compile: new graphs for input {tuple(self.lq.shape)} at iteration '
                                   f'{current_iter}; that step took {self.compile_meter.last_step_seconds:.1f} s')
        self.divergence.record(culprit, current_iter, loss_dict[culprit].item() if culprit in loss_dict else None)
        self.log_dict = self.reduce_loss_dict(loss_dict)
        if hasattr(self.optimizer_g, 'density'):
            self.log_dict['density'] = self.optimizer_g.density()
        if self.divergence.skipped_steps:
            self.log_dict['skipped_steps'] = self.divergence.skipped_steps
        if culprit is None and self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def test(self):
        with eager() if self.compile_meter is not None else contextlib.nullcontext():
            super().test()

    def generator_losses(self):
        """(total loss, {name: logged value}) of `self.output` against `self.gt`, as BasicSR's SRModel."""
        loss_dict = OrderedDict()
        if self.cri_pix:
            loss_dict['l_pix'] = self.cri_pix(self.output, self.gt)
        if self.cri_perceptual:
            percep, style = self.cri_perceptual(self.output, self.gt)
            for name, value in (('l_percep', percep), ('l_style', style)):
                if value is not None:
                    loss_dict[name] = value
        return sum(loss_dict.values()), loss_dict
