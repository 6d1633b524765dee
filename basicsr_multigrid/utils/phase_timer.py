"""Measured seconds per iteration and data-loading share for each multigrid phase.

BasicSR's loop fetches a batch, then calls `update_learning_rate`, `feed_data`, `optimize_parameters`, then
logs / saves / validates. The model marks the start and end of each step's compute; the gap before a step,
minus time spent saving and validating, is time spent waiting for data.
"""
import time


class PhaseTimer:

    def __init__(self, schedule):
        self.schedule = schedule
        self.totals = {}  # phase index -> [iterations, compute seconds, data seconds]
        self._step_start = None
        self._last_step_end = None
        self._excluded = 0.0

    def start_step(self):
        self._step_start = time.perf_counter()

    def end_step(self, iteration):
        """`iteration` is 0-based; the gap since the previous step (less excluded time) counts as data time."""
        now = time.perf_counter()
        data = 0.0 if self._last_step_end is None else max(0.0, self._step_start - self._last_step_end - self._excluded)
        totals = self.totals.setdefault(self.schedule.phase_at(iteration).index, [0, 0.0, 0.0])
        totals[0] += 1
        totals[1] += now - self._step_start
        totals[2] += data
        self._last_step_end, self._excluded = now, 0.0

    def exclude(self, seconds):
        """Time between steps that is not data loading (validation, checkpoints)."""
        self._excluded += seconds

    def report(self):
        """One record per phase seen so far, with the cost model's prediction next to the measurement."""
        records = []
        for phase in self.schedule.phases:
            if phase.index not in self.totals:
                continue
            iterations, compute, data = self.totals[phase.index]
            records.append({
                'phase': phase.index, 'lq_size': phase.lq_size, 'num_frame': phase.num_frame,
                'batch_size_per_gpu': phase.batch_size_per_gpu, 'iters': iterations,
                's_per_iter': (compute + data) / iterations,
                'data_share': data / (compute + data) if compute + data else 0.0,
                'predicted_rel_cost': float(self.schedule.relative_cost(phase)),
            })
        return records
