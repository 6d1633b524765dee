"""One training run as explicit code, modelled on basicsr 1.4.2's `train_pipeline` and calling the same model API
(`feed_data`, `optimize_parameters`, `update_learning_rate`, `validation`, `save`, `resume_training`), so stock
BasicSR models and users' own `BaseModel` subclasses train unchanged.

    options -> preflight -> resume state -> loaders (from the start iteration) -> model -> loop -> final save

One iteration, in `TrainingRun.train`: fetch the batch -> hooks `before_train_iter` -> LR = scheduled x hook
factors -> `feed_data` -> `optimize_parameters` -> hooks `after_train_iter` -> log / save / validate (hooks
`after_val`). After the last iteration: save the latest weights, validate them unless the periodic validation of
the last iteration just did (BasicSR would score them twice), hooks `after_run`. A preemption signal stops the
loop after an iteration with a checkpoint of it (training/preemption.py); under DDP, a rank whose collective fails
because another rank died says which one (utils/distributed.py).

What a model offers beyond BasicSR's API (its own training step, teacher and training-weights validations, state
kept across a resume) it declares; the runner reads that with `contract_of` (models/runner_contract.py).
"""
import datetime
import logging
import sys
import time
from os import path as osp

import torch
from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher
from basicsr.models import build_model
from basicsr.train import create_train_val_dataloader as create_fixed_shape_loaders
from basicsr.train import init_tb_loggers
from basicsr.utils import get_env_info, get_root_logger, get_time_str, make_exp_dirs, mkdir_and_rename
from basicsr.utils.options import copy_opt_file, dict2str, parse_options

from basicsr_multigrid.hooks import build_hooks, sort_by_priority
from basicsr_multigrid.hooks.multigrid_lr_hook import MultigridLRHook
from basicsr_multigrid.models.ema_validation import TRAINING_WEIGHTS_SUFFIX
from basicsr_multigrid.models.runner_contract import contract_of, network_batch, validation_metric_results
from basicsr_multigrid.multigrid import dataloader as multigrid_loaders
from basicsr_multigrid.training.cli import prepare_argv, take_flag
from basicsr_multigrid.training.learning_rate import LearningRates, hook_lr_factor, resolve_scheduler_options
from basicsr_multigrid.training.preemption import PreemptionWatch, Preempted, requeue_slurm_job, stop_signals
from basicsr_multigrid.training.preflight import preflight, require_manual_seed
from basicsr_multigrid.training.recorder import RunRecorder, run_iterations
from basicsr_multigrid.training.resume import load_resume_state
from basicsr_multigrid.training.rollback import Rollback, load_checkpoint_weights
from basicsr_multigrid.models.divergence import Diverged
from basicsr_multigrid.multigrid.sampler import ScheduledShapeBatchSampler
from basicsr_multigrid.utils.distributed import stopped_rank_error, wait_for_all_ranks
from basicsr_multigrid.utils.errors import TrainingStopped


def train_pipeline(root_path, argv=None):
    """`python basicsr_multigrid/train.py -opt X.yml [...]`, with experiments under `root_path`."""
    written = prepare_argv(argv)
    requeue = take_flag('--requeue')
    require_manual_seed(written, sys.argv)
    opt, args = parse_options(root_path, is_train=True)  # also seeds the RNGs and joins the process group
    opt['root_path'], opt['requeue'] = root_path, requeue
    torch.backends.cudnn.benchmark = True

    schedule = preflight(opt)
    resume_state = load_resume_state(opt)
    if resume_state is None:
        make_exp_dirs(opt)
        if opt['logger'].get('use_tb_logger') and 'debug' not in opt['name'] and opt['rank'] == 0:
            mkdir_and_rename(osp.join(root_path, 'tb_logger', opt['name']))
    copy_opt_file(args.opt, opt['path']['experiments_root'])
    log_file = osp.join(opt['path']['log'], f"train_{opt['name']}_{get_time_str()}.log")
    logger = get_root_logger(logger_name='basicsr', log_level=logging.INFO, log_file=log_file)
    logger.info(get_env_info())
    logger.info(dict2str(opt))
    tb_logger = init_tb_loggers(opt)

    start_iter = resume_state['iter'] if resume_state else 0
    if schedule is not None:
        resolve_scheduler_options(opt, schedule)
        loaders = multigrid_loaders.create_train_val_dataloader(opt, logger, schedule, start_iter)
    else:
        loaders = create_fixed_shape_loaders(opt, logger)
    train_loader, train_sampler, val_loaders, _, _ = loaders

    model = build_model(opt)
    if resume_state:
        model.resume_training(resume_state)
        logger.info(f"Resuming training from epoch: {resume_state['epoch']}, iter: {resume_state['iter']}.")
    run = TrainingRun(opt, model, schedule, train_loader, train_sampler, val_loaders, logger, tb_logger,
                      start_epoch=resume_state['epoch'] if resume_state else 0, start_iter=start_iter,
                      lr_scale=resume_state.get('lr_scale', 1.0) if resume_state else 1.0)
    try:
        run.train()
    except TrainingStopped:
        raise
    except Exception as error:
        raise stopped_rank_error(error, run.current_iter) or error
    if tb_logger:
        tb_logger.close()


class TrainingRun:
    """The loop of one run. Hooks see it as their `runner`: `model`, `schedule`, `phase`, `iter` (0-based,
    iterations completed, mmengine's convention), `epoch`, `max_iters`, `world_size`, `base_batch_size`."""

    def __init__(self, opt, model, schedule, train_loader, train_sampler, val_loaders, logger, tb_logger=None,
                 start_epoch=0, start_iter=0, lr_scale=1.0):
        self.opt, self.model, self.schedule = opt, model, schedule
        self.contract = contract_of(model)
        self.train_loader, self.train_sampler, self.val_loaders = train_loader, train_sampler, val_loaders
        self.logger, self.tb_logger = logger, tb_logger
        self.epoch, self.start_epoch = start_epoch, start_epoch
        self.current_iter = self.start_iter = start_iter  # BasicSR's 1-based count of finished iterations
        self.max_iters = run_iterations(opt, schedule)
        self.max_epochs = None
        self.world_size = opt.get('world_size', 1)
        self.hooks = build_hooks(opt['train'].get('hooks'))
        if schedule is not None and not any(isinstance(hook, MultigridLRHook) for hook in self.hooks):
            self.hooks = sort_by_priority(self.hooks + [MultigridLRHook()])
        self.learning_rates = LearningRates(model, warmup_iter=opt['train'].get('warmup_iter', -1))
        self.rollback = Rollback(opt, lr_scale)
        self.hand_lr_scale_to_model()
        self.recorder = RunRecorder(opt, schedule, logger, tb_logger, start_iter, writes=opt['rank'] == 0)
        self.prefetcher = make_prefetcher(train_loader, opt)
        self.skipped_items = 0  # training items replaced because of bad frames (datasets.train.on_bad_frame)
        self.validation_seconds = 0.0
        self.teacher_validated = set()
        self.validated_iter = None  # the iteration whose weights the latest validation scored

    @property
    def iter(self):
        return self.current_iter - 1

    @property
    def phase(self):
        return self.schedule.phase_at(self.iter) if self.schedule is not None else None

    @property
    def base_batch_size(self):
        if self.schedule is not None:
            return self.schedule.base_batch_size
        return self.opt['datasets']['train']['batch_size_per_gpu']

    def train(self):
        self.logger.info(f'Start training from epoch: {self.epoch}, iter: {self.current_iter}')
        self.loop_start = time.perf_counter()
        with PreemptionWatch(stop_signals(self.opt), self.logger) as preemption:
            batches = self.batches(self.start_epoch)
            while self.current_iter < self.max_iters:
                try:
                    self.train_iteration(batches)
                except Diverged as error:
                    batches = self.roll_back(error, batches)
                    continue
                signal_name = preemption.stop_requested()
                if signal_name is not None:
                    self.stop_for_signal(signal_name)
        self.finish()

    def train_iteration(self, batches):
        fetch_start = time.perf_counter()
        self.epoch, batch = next(batches)
        step_start = time.perf_counter()
        self.current_iter += 1
        self.call_hooks('before_train_iter', batch_idx=self.iter, data_batch=batch)
        factor = hook_lr_factor(self.hooks, self) * self.rollback.lr_scale
        self.learning_rates.set_for_iteration(self.current_iter, factor)
        self.skipped_items += int(batch['skipped'].sum()) if 'skipped' in batch else 0
        self.model.feed_data(batch)
        self.model.optimize_parameters(self.current_iter)
        step_end = time.perf_counter()
        self.recorder.record_step(self.iter, step_start - fetch_start, step_end - step_start,
                                  self.step_compile_seconds())
        received = network_batch(self.model, batch)
        self.call_hooks('after_train_iter', batch_idx=self.iter, data_batch=received,
                        outputs=self.model.get_current_log())
        if self.current_iter % self.opt['logger']['print_freq'] == 0:
            self.log_iteration(step_end - step_start, step_start - fetch_start, received.get('lq'))
        if self.current_iter % self.opt['logger']['save_checkpoint_freq'] == 0:
            self.logger.info('Saving models and training states.')
            self.save(self.epoch, self.current_iter)
        if self.opt.get('val') is not None and self.current_iter % self.opt['val']['val_freq'] == 0:
            self.validate()

    def stop_for_signal(self, signal_name):
        """Checkpoint of the iteration just completed (unless its periodic save wrote it), then Preempted."""
        if self.current_iter % self.opt['logger']['save_checkpoint_freq'] != 0:
            self.save(self.epoch, self.current_iter)
        wait_for_all_ranks()  # no rank exits (and gets its launcher to kill the others) before rank 0 has saved
        state = osp.join(self.opt['path']['training_states'], f'{self.current_iter}.state')
        self.logger.info(f'{signal_name}: stopped after iteration {self.current_iter}; checkpoint {state}')
        if self.opt.get('requeue') and self.opt['rank'] == 0:
            requeue_slurm_job(self.logger)
        raise Preempted(f'{signal_name} after iteration {self.current_iter}: checkpoint {state} written; '
                        'continue with --auto_resume')

    @property
    def compile_meter(self):
        """The CompileMeter of a model whose own training step compiles the network (`train.compile`), else None."""
        return self.model.compile_meter if self.contract.owns_training_step else None

    def step_compile_seconds(self):
        """Seconds of the latest step if it compiled the network (`train.compile`), else 0."""
        return self.compile_meter.last_step_seconds if self.compile_meter is not None else 0.0

    def hand_lr_scale_to_model(self):
        """A model that keeps it saves the LR scale rollbacks left with its training states: a resumed run keeps it."""
        if self.contract.keeps_lr_scale:
            self.model.lr_scale = self.rollback.lr_scale

    def roll_back(self, error, batches):
        """`train.on_divergence: rollback` (training/rollback.py): back to the newest checkpoint; returns the batches
        to go on with (a multigrid sampler repeats those after the checkpoint, in the shapes of their iterations)."""
        device = 'cpu' if self.model.device.type == 'cpu' else f'cuda:{self.model.device.index or 0}'
        path, state = self.rollback.checkpoint_for(error, self.opt['path']['experiments_root'], device)
        load_checkpoint_weights(self.model, path, state['iter'])
        self.model.resume_training(state)
        self.model.divergence.reset_streak()
        self.hand_lr_scale_to_model()
        self.validated_iter = None  # the weights validated since the checkpoint are gone
        self.learning_rates = LearningRates(self.model, warmup_iter=self.opt['train'].get('warmup_iter', -1))
        self.logger.warning(f'{error}; rolled back to iteration {state["iter"]} ({path}) with the LR x '
                            f'{self.rollback.lr_scale:g} (rollback {self.rollback.count} of '
                            f'{self.rollback.max_rollbacks})')
        self.current_iter, self.epoch = state['iter'], state['epoch']
        self.recorder.drop_records_after(state['iter'])
        if not isinstance(self.train_sampler, ScheduledShapeBatchSampler):
            return batches  # basicsr's samplers cannot be repositioned: the data goes on from where it was
        self.train_sampler.start_iter = state['iter']
        return self.batches(state['iter'] // self.train_sampler.iters_per_epoch)

    def batches(self, epoch):
        """(epoch, batch) for as long as the loop asks, epoch after epoch from `epoch`."""
        empty_epochs = 0
        while True:
            self.train_sampler.set_epoch(epoch)
            self.prefetcher.reset()
            batch = self.prefetcher.next()
            empty_epochs = empty_epochs + 1 if batch is None else 0
            if empty_epochs > 1:
                raise RuntimeError(f'the training loader ran out of batches at iteration {self.current_iter}')
            while batch is not None:
                yield epoch, batch
                batch = self.prefetcher.next()
            epoch += 1

    def log_iteration(self, seconds, data_seconds, lq):
        extra = {'skipped_items': self.skipped_items} if self.skipped_items else {}
        self.recorder.record_iteration(epoch=self.epoch, current_iter=self.current_iter,
                                       lrs=self.model.get_current_learning_rate(), losses=self.model.get_current_log(),
                                       lq=lq, seconds=seconds, data_seconds=data_seconds,
                                       extra=extra)

    def save(self, epoch, current_iter):
        self.model.save(epoch, current_iter)
        self.recorder.write_phase_timing()

    def validate(self):
        """Every validation set: the teacher once (distillation models), then the trained network (its EMA and,
        with `val.ema: both`, the training weights too; models/ema_validation.py)."""
        if len(self.val_loaders) > 1 and not self.contract.validates_several_sets:
            self.logger.warning('Multiple validation datasets are *only* supported by SRModel.')  # as BasicSR warns
        started = time.perf_counter()
        training_seconds = started - self.loop_start - self.validation_seconds
        for val_loader in self.val_loaders:
            name = val_loader.dataset.opt['name']
            if self.contract.validates_teacher and name not in self.teacher_validated:
                self.teacher_validated.add(name)
                if self.model.validate_teacher(val_loader, self.current_iter, self.tb_logger):
                    self.record_metrics(f'{name}_teacher', training_seconds)
            self.model.validation(val_loader, self.current_iter, self.tb_logger, self.opt['val'].get('save_img', False))
            self.record_metrics(name, training_seconds)
            if self.contract.validates_training_weights and self.model.validate_training_weights(
                    val_loader, self.current_iter, self.tb_logger):
                self.record_metrics(f'{name}{TRAINING_WEIGHTS_SUFFIX}', training_seconds)
        self.validated_iter = self.current_iter
        self.validation_seconds += time.perf_counter() - started
        self.recorder.write_phase_timing()
        self.call_hooks('after_val')

    def record_metrics(self, dataset_name, training_seconds):
        metrics = mean_metric_values(self.model)
        if metrics is not None:
            self.recorder.record_validation(self.current_iter, dataset_name, training_seconds, metrics)

    def finish(self):
        elapsed = time.perf_counter() - self.loop_start
        self.logger.info(f'End of training. Time consumed: {datetime.timedelta(seconds=int(elapsed))}')
        meter = self.compile_meter
        if meter is not None:
            self.logger.info(f'torch.compile: {meter.graphs} graphs in {meter.steps} steps that compiled, '
                             f'{meter.seconds:.1f} s of the time above')
        self.logger.info('Save the latest model.')
        self.save(epoch=-1, current_iter=-1)  # BasicSR's "latest" files
        # tracked, not derived from val_freq: a run resumed at total_iter or rolled back has not validated them
        if self.opt.get('val') is not None and self.validated_iter != self.current_iter:
            self.validate()
        self.call_hooks('after_run')

    def call_hooks(self, event, **kwargs):
        for hook in self.hooks:
            getattr(hook, event)(self, **kwargs)


def make_prefetcher(loader, opt):
    """BasicSR's prefetchers (preflight checked the mode); `prefetch_mode: cuda` falls back to the CPU one on a
    machine without CUDA (B7)."""
    if opt['datasets']['train'].get('prefetch_mode') == 'cuda' and opt.get('num_gpu', 0) and torch.cuda.is_available():
        return CUDAPrefetcher(loader, opt)
    return CPUPrefetcher(loader)


def mean_metric_values(model):
    """The dataset value of each metric of the last validation, as BasicSR logs it: the mean over images (image
    models), or the mean over clips of the per-clip mean over frames (video models). None without metrics."""
    names = list((model.opt.get('val') or {}).get('metrics') or {})
    results = validation_metric_results(model)
    if not names or not results:
        return None
    if all(isinstance(value, torch.Tensor) and value.dim() == 2 for value in results.values()):
        per_clip = [values.mean(dim=0) for values in results.values()]
        means = sum(per_clip) / len(per_clip)
        return {name: means[i].item() for i, name in enumerate(names)}
    return {name: float(results[name]) for name in names}
