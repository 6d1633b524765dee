"""Multigrid training behaviour shared by this package's BasicSR video models."""
import json
import os
import time
from os import path as osp

from basicsr.utils.dist_util import master_only

from basicsr_multigrid.hooks import build_hooks
from basicsr_multigrid.hooks.multigrid_lr_hook import MultigridLRHook
from basicsr_multigrid.hooks.runner import TrainingRunner
from basicsr_multigrid.models.checkpoint_mixin import AtomicCheckpointMixin
from basicsr_multigrid.multigrid.schedule import MultigridSchedule
from basicsr_multigrid.utils.phase_timer import PhaseTimer


class LoggedInt(int):
    """An int that BasicSR's message logger (which formats every value with .4e) prints as an int."""

    def __format__(self, spec):
        return str(int(self))


class MultigridTrainingMixin(AtomicCheckpointMixin):
    """Put before a BasicSR video model class: trains it on a multigrid schedule.

    - The schedule (`train.multigrid`, or one fixed-shape phase without it) is built once from the options.
    - LR: BasicSR's scheduler sets the LR, then the mmengine hooks of `train.hooks` (warmup, linear
      scaling, ...) and MultigridLRHook multiply it. The hook factors are removed before the next scheduler
      step, so chainable schedulers (MultiStepRestartLR) never compound them.
    - Items skipped for bad frames (`datasets.train.on_bad_frame: skip`) are counted and logged as `skipped_items`.
    - Hooks also get `after_train_iter` (with the batch's `lq`/`gt`) and, at BasicSR's final save, `after_run`.
    - `scheduler.periods: stages` restarts CosineAnnealingRestartLR at every spatial stage.
    - Every logged iteration reports phase, stage, lq_size, num_frame and batch of the batch the network
      actually received, plus the LR (console and TensorBoard).
    - Each validation appends one JSON line per dataset to `<experiments_root>/val_metrics.jsonl`:
      `{"iter", "dataset", "wall_s", "<metric>": value, ...}`, where `wall_s` counts training time since
      the model was built, without validation time. The demo and the benchmarks read it.
    - Measured seconds per iteration and data-loading share per phase go to
      `<experiments_root>/phase_timing.json` at every validation and checkpoint.
    """

    def __init__(self, opt):
        self.schedule = MultigridSchedule.from_options(opt) if opt['is_train'] else None
        super().__init__(opt)
        self._train_start = time.perf_counter()
        self._validation_seconds = 0.0
        if self.is_train:
            self.hooks = build_hooks(opt['train'].get('hooks'))
            if not any(isinstance(hook, MultigridLRHook) for hook in self.hooks):
                self.hooks.append(MultigridLRHook())
            self.runner = TrainingRunner(self, self.schedule, opt.get('world_size', 1), self.schedule.total_iter)
            self._scheduled_lrs = None
            self.phase_timer = PhaseTimer(self.schedule)
            self.skipped_items = 0  # training items replaced because of bad frames (datasets.train.on_bad_frame)

    def setup_schedulers(self):
        scheduler_opt = self.opt['train']['scheduler']
        if scheduler_opt.get('periods') == 'stages':
            lengths = self.stage_lengths()
            # BasicSR's restart falls one step after a period's end: shorten the first period by one so the
            # LR restarts exactly at each stage boundary and the last period ends at total_iter.
            scheduler_opt['periods'] = [lengths[0] - 1] + lengths[1:]
            scheduler_opt.setdefault('restart_weights', [1] * len(lengths))
        super().setup_schedulers()

    def stage_lengths(self):
        """Iterations of each spatial stage (and of the fine-tune phase, if any), in order."""
        ends = {}
        for phase in self.schedule.phases:
            ends[(phase.stage, phase.finetune)] = phase.end_iter
        ends = sorted(ends.values())
        return [end - start for start, end in zip([0] + ends[:-1], ends)]

    def update_learning_rate(self, current_iter, warmup_iter=-1):
        self.phase_timer.start_step()  # BasicSR calls this first in every iteration, after fetching the batch
        if self._scheduled_lrs is not None:  # drop last iteration's hook factors before the scheduler steps
            self._set_lr(self._scheduled_lrs)
        super().update_learning_rate(current_iter, warmup_iter)
        self._scheduled_lrs = [[group['lr'] for group in o.param_groups] for o in self.optimizers]
        self.runner.iter = current_iter - 1
        for hook in self.hooks:
            hook.before_train_iter(self.runner, batch_idx=current_iter - 1)

    def resume_training(self, resume_state):
        """Optimizer states carry the hook-scaled LR of the saved iteration; restart from the scheduler's own."""
        super().resume_training(resume_state)
        self._scheduled_lrs = [list(scheduler.get_last_lr()) for scheduler in self.schedulers]

    def feed_data(self, data):
        if 'skipped' in data:
            self.skipped_items += int(data['skipped'].sum())
        super().feed_data(data)

    def optimize_parameters(self, current_iter):
        super().optimize_parameters(current_iter)
        self.after_optimize_step(current_iter)

    def after_optimize_step(self, current_iter):
        """Logging, hooks and timing of one training step (models with their own step call it after it)."""
        if self.skipped_items:
            self.log_dict['skipped_items'] = LoggedInt(self.skipped_items)
        phase = self.schedule.phase_at(current_iter - 1)
        batch, num_frame, _, _, lq_size = self.lq.shape
        self.log_dict.update(phase=LoggedInt(phase.index), stage=LoggedInt(phase.stage), lq_size=LoggedInt(lq_size),
                             num_frame=LoggedInt(num_frame), batch=LoggedInt(batch),
                             lr=self.optimizers[0].param_groups[0]['lr'])
        for hook in self.hooks:
            hook.after_train_iter(self.runner, batch_idx=current_iter - 1, data_batch={'lq': self.lq, 'gt': self.gt})
        self.phase_timer.end_step(current_iter - 1)

    def save(self, epoch, current_iter):
        started = time.perf_counter()
        super().save(epoch, current_iter)
        if self.is_train:
            self.phase_timer.exclude(time.perf_counter() - started)
            self._write_phase_timing()
            if current_iter == -1:  # BasicSR saves the final 'latest' weights once training has ended
                for hook in self.hooks:
                    hook.after_run(self.runner)

    @master_only
    def _write_phase_timing(self):
        os.makedirs(self.opt['path']['experiments_root'], exist_ok=True)
        with open(osp.join(self.opt['path']['experiments_root'], 'phase_timing.json'), 'w') as f:
            json.dump(self.phase_timer.report(), f, indent=1)

    def validation(self, dataloader, current_iter, tb_logger, save_img=False):
        started = time.perf_counter()
        self._wall_at_validation = started - self._train_start - self._validation_seconds
        super().validation(dataloader, current_iter, tb_logger, save_img)
        elapsed = time.perf_counter() - started
        self._validation_seconds += elapsed
        if self.is_train:
            self.phase_timer.exclude(elapsed)
            self._write_phase_timing()

    def _log_validation_metric_values(self, current_iter, dataset_name, tb_logger):
        super()._log_validation_metric_values(current_iter, dataset_name, tb_logger)
        self._append_metrics_record(current_iter, dataset_name)

    @master_only
    def _append_metrics_record(self, current_iter, dataset_name):
        if not self.opt['is_train']:
            return
        record = {'iter': current_iter, 'dataset': dataset_name,
                  'wall_s': round(getattr(self, '_wall_at_validation', 0.0), 3)}
        record.update({name: float(value) for name, value in self._mean_metric_values().items()})
        os.makedirs(self.opt['path']['experiments_root'], exist_ok=True)
        with open(osp.join(self.opt['path']['experiments_root'], 'val_metrics.jsonl'), 'a') as f:
            f.write(json.dumps(record) + '\n')

    def _mean_metric_values(self):
        """Mean of each metric over all frames of all folders (what BasicSR logs as the dataset value)."""
        names = list(self.opt['val']['metrics'].keys())
        per_folder = [tensor.mean(dim=0) for tensor in self.metric_results.values()]
        means = sum(per_folder) / len(per_folder)
        return {name: means[i].item() for i, name in enumerate(names)}
