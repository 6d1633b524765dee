"""The outputs of a training run, written by one recorder and read back by one reader.

In `<experiments_root>` (rank 0 only):

- `train_log.jsonl`: one record per logged iteration (every `logger.print_freq`): `iter`, `epoch`, `lr` (first
  group of the first optimizer) and `lrs`, the losses, and the shape of the batch the network received
  (`batch`, `num_frame`, `lq_size`), with `phase` and `stage` of the multigrid schedule when there is one;
- `val_metrics.jsonl`: one record per validation of each dataset: `iter`, `dataset`, `wall_s` (training time
  since the loop started, validation excluded) and the dataset's mean of each metric;
- `phase_timing.json`: measured seconds per iteration and data-loading share of each phase, next to the
  schedule's cost prediction.

A resumed run first drops the records of the iterations after its checkpoint, which it trains again. The same
iteration line goes to the console / log file (BasicSR's format, integers printed as integers) and to TensorBoard.
Tools, the demo and the tests read these files with `read_run`.
"""
import datetime
import json
import os
import time
from os import path as osp
from typing import NamedTuple

from basicsr_multigrid.utils.atomic_io import write_text_atomic

TRAIN_LOG = 'train_log.jsonl'
VAL_METRICS = 'val_metrics.jsonl'
PHASE_TIMING = 'phase_timing.json'


class RunRecords(NamedTuple):
    iterations: list  # train_log.jsonl records
    validations: list  # val_metrics.jsonl records
    phase_timing: list  # phase_timing.json records

    def validations_of(self, dataset):
        return [record for record in self.validations if record['dataset'] == dataset]

    def last_validation(self, dataset=None):
        records = self.validations_of(dataset) if dataset else self.validations
        return records[-1]


def read_run(experiment_root):
    """Everything a run recorded so far; missing files read as empty."""
    return RunRecords(_read_jsonl(osp.join(experiment_root, TRAIN_LOG)),
                      _read_jsonl(osp.join(experiment_root, VAL_METRICS)),
                      _read_json(osp.join(experiment_root, PHASE_TIMING), default=[]))


def _read_jsonl(path):
    """Complete lines only: a run killed while appending leaves at most one unterminated last line."""
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.endswith('\n') and line.strip()]


def _read_json(path, default):
    if not osp.isfile(path):
        return default
    with open(path) as f:
        return json.load(f)


def batch_shape(lq):
    """(batch, num_frame, lq_size) of a (B, T, C, H, W) clip batch; (batch, None, lq_size) for (B, C, H, W)."""
    if lq is None or lq.dim() not in (4, 5):
        return None, None, None
    return lq.shape[0], (lq.shape[1] if lq.dim() == 5 else None), lq.shape[-1]


def run_iterations(opt, schedule):
    """The iterations the run trains: the schedule's own count (`batch_scaling: constant_compute` runs fewer than
    the options' total_iter), else total_iter."""
    return schedule.total_iter if schedule is not None else int(opt['train']['total_iter'])


class PhaseTimer:
    """Seconds of data loading and of compute per multigrid phase, measured around each step by the runner, and the
    training time still to come: measured seconds per iteration for the phases seen so far, the schedule's cost
    model for the others, scaled by the seconds per unit of predicted cost measured so far."""

    def __init__(self, schedule):
        self.schedule = schedule
        self.totals = {}  # phase index -> [iterations, compute seconds, data seconds]
        self.compiled = {}  # phase index -> [steps that compiled, their seconds]
        self.phases = {phase.index: phase for phase in schedule.phases}

    def add(self, iteration, data_s, compute_s, compile_s=0.0):
        """One step; a step that compiled (`compile_s` > 0, torch.compile) is kept apart from the phase's timing."""
        index = self.schedule.phase_at(iteration).index
        if compile_s:
            compiled = self.compiled.setdefault(index, [0, 0.0])
            compiled[0] += 1
            compiled[1] += compile_s
            return
        totals = self.totals.setdefault(index, [0, 0.0, 0.0])
        totals[0] += 1
        totals[1] += compute_s
        totals[2] += data_s

    def measured_seconds(self):
        return sum(compute + data for _, compute, data in self.totals.values())

    def remaining_seconds(self, iterations_done):
        """Step seconds of the iterations after the first `iterations_done`; None before any step was measured."""
        if not self.totals:
            return None
        predicted = sum(n * self.schedule.relative_cost(self.phases[index]) for index, (n, _, _) in self.totals.items())
        seconds_per_cost = self.measured_seconds() / predicted
        remaining = 0.0
        for phase in self.schedule.phases:
            todo = phase.end_iter - max(phase.start_iter, iterations_done)
            if todo <= 0:
                continue
            if phase.index in self.totals:
                iterations, compute, data = self.totals[phase.index]
                remaining += todo * (compute + data) / iterations
            else:
                remaining += todo * self.schedule.relative_cost(phase) * seconds_per_cost
        return remaining

    def report(self):
        records = []
        for phase in self.schedule.phases:
            if phase.index not in self.totals and phase.index not in self.compiled:
                continue
            iterations, compute, data = self.totals.get(phase.index, (0, 0.0, 0.0))
            record = {
                'phase': phase.index, 'lq_size': phase.lq_size, 'num_frame': phase.num_frame,
                'batch_size_per_gpu': phase.batch_size_per_gpu, 'iters': iterations,
                's_per_iter': (compute + data) / iterations if iterations else None,
                'data_share': data / (compute + data) if compute + data else 0.0,
                'predicted_rel_cost': float(self.schedule.relative_cost(phase)),
            }
            if phase.index in self.compiled:
                record['compiled_steps'], record['compile_s'] = self.compiled[phase.index]
            records.append(record)
        return records


class RunRecorder:
    """Writes the run's records (see the module docstring). Only the process with `writes=True` (rank 0) writes."""

    def __init__(self, opt, schedule, logger, tb_logger=None, start_iter=0, writes=True):
        self.root = opt['path']['experiments_root']
        self.name = opt['name']
        self.total_iter = run_iterations(opt, schedule)
        self.schedule = schedule
        self.logger, self.tb_logger = logger, tb_logger
        self.writes = writes
        self.timer = PhaseTimer(schedule) if schedule is not None else None
        self.start_iter = start_iter
        self.clock_start = time.perf_counter()  # the loop's start: ETAs include checkpoints and validations
        if writes and start_iter:
            self.drop_records_after(start_iter)

    def drop_records_after(self, start_iter):
        """A resumed (or rolled back) run redoes the iterations after its checkpoint: their records go."""
        if not self.writes:
            return
        for filename in (TRAIN_LOG, VAL_METRICS):
            path = osp.join(self.root, filename)
            records = _read_jsonl(path)
            kept = [record for record in records if record['iter'] <= start_iter]
            if len(kept) != len(records):
                write_text_atomic(path, [json.dumps(record) + '\n' for record in kept])

    def record_step(self, iteration, data_s, compute_s, compile_s=0.0):
        """`iteration` is 0-based; `compile_s` the seconds of a step that compiled the network (else 0). Logs the
        predicted training time after the run's first step, and elapsed and predicted remaining time when the next
        iteration starts a new multigrid phase."""
        if self.timer is None:
            return
        self.timer.add(iteration, data_s, compute_s, compile_s)
        elapsed = self._elapsed()
        if iteration == self.start_iter:
            self.logger.info(f'Predicted training time: {_duration(elapsed + self.eta_seconds(iteration + 1))} '
                             '(cost model x the first iteration; refined as each phase is measured)')
            return
        following = self.schedule.phase_at(iteration + 1) if iteration + 1 < self.total_iter else None
        if following is not None and following != self.schedule.phase_at(iteration):
            self.logger.info(f'Multigrid phase {following.index + 1} next: {_duration(elapsed)} elapsed, '
                             f'{_duration(self.eta_seconds(iteration + 1))} predicted to go')

    def _elapsed(self):
        return time.perf_counter() - self.clock_start

    def eta_seconds(self, current_iter):
        """Seconds until `total_iter` after `current_iter` iterations: the phase timer's prediction, scaled by the
        share of wall time that goes to steps (checkpoints and validations take the rest); without a schedule, the
        mean time per iteration so far."""
        elapsed = self._elapsed()
        if self.timer is None or not self.timer.totals:
            return elapsed / max(1, current_iter - self.start_iter) * (self.total_iter - current_iter)
        compiling = sum(seconds for _, seconds in self.timer.compiled.values())  # done once, never again
        overhead = max(1.0, (elapsed - compiling) / self.timer.measured_seconds())
        return self.timer.remaining_seconds(current_iter) * overhead

    def record_iteration(self, *, epoch, current_iter, lrs, losses, lq, seconds, data_seconds, extra=None):
        """One logged iteration: console line, TensorBoard scalars and a train_log.jsonl record."""
        if not self.writes:
            return
        batch, num_frame, lq_size = batch_shape(lq)
        shape = {'lq_size': lq_size, 'num_frame': num_frame, 'batch': batch}
        if self.schedule is not None:
            phase = self.schedule.phase_at(current_iter - 1)
            shape = {'phase': phase.index, 'stage': phase.stage, **shape}
        shape = {key: value for key, value in shape.items() if value is not None}
        scalars = dict(losses, **(extra or {}))
        self.logger.info(self._console_line(epoch, current_iter, lrs, seconds, data_seconds, scalars, shape))
        if self.tb_logger is not None:
            for key, value in scalars.items():
                self.tb_logger.add_scalar(f'losses/{key}' if key.startswith('l_') else key, value, current_iter)
            for key, value in dict(shape, lr=lrs[0]).items():
                self.tb_logger.add_scalar(key, value, current_iter)
        record = {**scalars, **shape, 'iter': current_iter, 'epoch': epoch, 'lr': lrs[0], 'lrs': list(lrs)}
        self._append(TRAIN_LOG, record)

    def _console_line(self, epoch, current_iter, lrs, seconds, data_seconds, scalars, shape):
        eta = self.eta_seconds(current_iter)
        lr_text = ''.join(f'{lr:.3e},' for lr in lrs)
        line = (f'[{self.name[:5]}..][epoch:{epoch:3d}, iter:{current_iter:8,d}, lr:({lr_text})] '
                f'[eta: {_duration(eta)}, time (data): {seconds:.3f} ({data_seconds:.3f})] ')
        line += ''.join(f'{key}: {value:.4e} ' for key, value in scalars.items())
        return line + ' '.join(f'{key}: {value}' for key, value in shape.items())

    def record_validation(self, current_iter, dataset, wall_s, metrics):
        if self.writes:
            record = {'iter': current_iter, 'dataset': dataset, 'wall_s': round(wall_s, 3)}
            self._append(VAL_METRICS, dict(metrics, **record))

    def write_phase_timing(self):
        if self.writes and self.timer is not None:
            os.makedirs(self.root, exist_ok=True)
            write_text_atomic(osp.join(self.root, PHASE_TIMING), [json.dumps(self.timer.report(), indent=1)])

    def _append(self, filename, record):
        os.makedirs(self.root, exist_ok=True)
        with open(osp.join(self.root, filename), 'a') as f:
            f.write(json.dumps(record) + '\n')


def _duration(seconds):
    return str(datetime.timedelta(seconds=int(seconds)))
