"""Multigrid training schedule: the single source of truth for training shapes.

Multigrid VSR training (Lin et al., AAAI 2023, arXiv 2205.05069) trains in
spatial *stages* from small to large LR patches; inside each stage the clip
length grows from short to long. Every consumer (batch sampler, dataset, LR
hooks, logging, benchmarks) asks this schedule which shape iteration ``i`` uses,
so the schedule is computed once from the option dict and is a frozen,
JSON-serialisable value.

Conventions:

* Iterations are 0-based: ``i`` is the number of completed iterations
  (mmengine's ``runner.iter``); BasicSR's 1-based ``current_iter`` is ``i + 1``.
* Phases cover ``[0, total_iter)`` half-open, contiguously, each >= 1 iteration. ``total_iter`` is the run's own
  count: the options' ``train.total_iter`` (``base_total_iter``), or fewer under ``batch_scaling: constant_compute``,
  which shares out the options' clips (``total_iter x batch_size_per_gpu``) instead of their iterations.
* "Never change space and time at once" (paper) is read as: space and time never
  *grow* at the same boundary. At a stage boundary the patch grows while the clip
  resets to the shortest length; inside a stage only the clip length changes.
* Planning uses exact ``Fraction`` arithmetic so iteration counts do not depend
  on float rounding.

Pure stdlib on purpose: tools and tests use it without torch or BasicSR.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any, Mapping, Sequence

from basicsr_multigrid.utils.errors import OptionError

__all__ = ['MultigridSchedule', 'Phase', 'ScheduleError']

SECTION = 'train.multigrid'
DEFAULT_TEMPORAL_FRACTIONS = (0.5, 0.75, 1.0)
SPLIT_MODES = ('equal', 'cost_balanced')
# none: batch B0 everywhere. constant_compute: Wu et al.'s sample budget (the run draws the fixed-shape run's
# total_iter x B0 clips; small shapes take a larger batch and proportionally fewer iterations).
# constant_iterations: every phase keeps its iterations and scales its batch up, so every iteration costs the
# full shape's (the run's compute equals the fixed-shape run's).
BATCH_SCALING_MODES = ('none', 'constant_compute', 'constant_iterations')
LR_BATCH_RULES = ('linear', 'sqrt')
MULTIGRID_KEYS = ('spatial_sizes', 'temporal_fractions', 'temporal_cycles', 'stage_split', 'phase_split',
                  'finetune_fraction', 'batch_scaling', 'max_batch_size_per_gpu', 'lr_batch_rule', 'max_lr_factor',
                  'stage_lr_factors')
# User-written fractions such as 0.3333333333 for 1/3 should still floor to the intended frame count.
FRAME_COUNT_TOLERANCE = Fraction(1, 10**9)
SPLIT_SUM_TOLERANCE = 1e-6


class ScheduleError(OptionError):
    """One-line message that starts with the YAML key path, e.g.
    'train.multigrid.stage_split: fractions sum to 0.9, must sum to 1'."""


@dataclass(frozen=True)
class Phase:
    """One training shape held for iterations ``[start_iter, end_iter)``."""

    index: int
    stage: int  # spatial stage; the finetune phase belongs to the last stage
    start_iter: int
    end_iter: int
    lq_size: int
    gt_size: int
    num_frame: int
    batch_size_per_gpu: int
    lr_factor: float
    finetune: bool = False

    @property
    def num_iters(self) -> int:
        return self.end_iter - self.start_iter

    @property
    def num_clips(self) -> int:
        """Clips per GPU the phase draws."""
        return self.num_iters * self.batch_size_per_gpu

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class MultigridSchedule:
    """Ordered phases plus the fixed-shape baseline they are compared against."""

    phases: tuple[Phase, ...]
    total_iter: int
    scale: int
    base_lq_size: int
    base_num_frame: int
    base_batch_size: int
    # The fixed-shape run's iterations (`train.total_iter` of the options); the run's clip budget is
    # base_total_iter x base_batch_size. Equals total_iter unless `batch_scaling: constant_compute` changed it.
    base_total_iter: int | None = None
    _start_iters: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, 'phases', tuple(self.phases))
        if self.base_total_iter is None:
            object.__setattr__(self, 'base_total_iter', self.total_iter)
        _check_coverage(self.phases, self.total_iter)
        object.__setattr__(self, '_start_iters', tuple(p.start_iter for p in self.phases))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_options(cls, opt: Mapping) -> MultigridSchedule:
        """Build the schedule from a BasicSR option dict (YAML loaded as dict).

        Without a ``train.multigrid`` section (or with ``multigrid: ~``) the result
        is a single phase at the baseline shape, so fixed-shape runs share the
        same machinery.
        """
        section = _lookup(opt, SECTION, required=False)
        baseline = _read_baseline(opt, fixed_shape=section is None)
        if section is None:
            fixed_shape = _PlannedPhase(0, baseline.lq_size, baseline.num_frame)
            return cls._from_plan(baseline, [fixed_shape], [Fraction(1)], [baseline.batch_size], [Fraction(1)],
                                  sample_budget=False)
        if not isinstance(section, Mapping):
            raise ScheduleError(f'{SECTION}: expected a mapping of multigrid options, got {section!r}')
        return cls._from_section(baseline, section)

    @classmethod
    def _from_section(cls, baseline: _Baseline, section: Mapping) -> MultigridSchedule:
        _reject_unknown_keys(section)
        spatial_sizes = _read_spatial_sizes(section, baseline.lq_size)
        frame_counts = _read_frame_counts(section, baseline.num_frame)
        cycles = _read_positive_int(section, 'temporal_cycles', default=1)
        stage_split = _read_split(section, 'stage_split', len(spatial_sizes))
        phase_split = _read_split(section, 'phase_split', len(frame_counts) * cycles)
        finetune_fraction = _read_finetune_fraction(section)
        batch_scaling = _read_choice(section, 'batch_scaling', BATCH_SCALING_MODES)
        max_batch_size = _read_max_batch_size(section, baseline.batch_size)
        lr_batch_rule = _read_choice(section, 'lr_batch_rule', LR_BATCH_RULES)
        max_lr_factor = _read_max_lr_factor(section)
        stage_lr_factors = _read_stage_lr_factors(section, len(spatial_sizes))

        stage_phases = [[_PlannedPhase(stage, lq_size, num_frame) for num_frame in frame_counts * cycles]
                        for stage, lq_size in enumerate(spatial_sizes)]
        full_shape = _PlannedPhase(len(spatial_sizes) - 1, spatial_sizes[-1], baseline.num_frame, finetune=True)
        batch_of = _batch_sizer(baseline.batch_size, batch_scaling, full_shape, max_batch_size)
        sample_budget = batch_scaling == 'constant_compute'
        # Shares are of iterations, or of clips under the sample budget: cost balancing then weighs a clip's cost.
        cost_of = _coster(baseline, (lambda plan: baseline.batch_size) if sample_budget else batch_of)

        planned = [p for phases in stage_phases for p in phases]
        shares = _stage_and_phase_shares(stage_phases, stage_split, phase_split, cost_of)
        if finetune_fraction > 0:
            shares = [share * (1 - finetune_fraction) for share in shares] + [finetune_fraction]
            planned.append(full_shape)
        batch_sizes = [batch_of(p) for p in planned]
        # The LR follows the batch size (B == B0 without batch scaling) by `lr_batch_rule`, capped by max_lr_factor.
        lr_factors = [stage_lr_factors[p.stage] * _batch_lr_factor(b, baseline.batch_size, lr_batch_rule,
                                                                   max_lr_factor)
                      for p, b in zip(planned, batch_sizes)]
        return cls._from_plan(baseline, planned, shares, batch_sizes, lr_factors, sample_budget=sample_budget)

    @classmethod
    def _from_plan(cls, baseline: _Baseline, planned: Sequence[_PlannedPhase], shares: Sequence[Fraction],
                   batch_sizes: Sequence[int], lr_factors: Sequence[Fraction | float],
                   sample_budget: bool) -> MultigridSchedule:
        """Turn planned shapes and exact shares into concrete phases: shares of the file's iterations, or under
        the sample budget shares of its clips (total_iter x B0), each phase then running
        max(1, round(clips / batch)) iterations (half up)."""
        if baseline.total_iter < len(planned):
            raise ScheduleError(f'train.total_iter: {baseline.total_iter} iterations cannot cover '
                                f'{len(planned)} multigrid phases; use total_iter >= {len(planned)}')
        phases, start = [], 0
        if sample_budget:
            clip_counts = _apportion(baseline.total_iter * baseline.batch_size, shares)
            iteration_counts = [max(1, _round_half_up(Fraction(clips, batch)))
                                for clips, batch in zip(clip_counts, batch_sizes)]
        else:
            iteration_counts = _apportion(baseline.total_iter, shares)
        for index, (plan, num_iters, batch_size, lr_factor) in enumerate(
                zip(planned, iteration_counts, batch_sizes, lr_factors)):
            phases.append(Phase(index=index, stage=plan.stage, start_iter=start, end_iter=start + num_iters,
                                lq_size=plan.lq_size, gt_size=plan.lq_size * baseline.scale,
                                num_frame=plan.num_frame, batch_size_per_gpu=batch_size,
                                lr_factor=float(lr_factor), finetune=plan.finetune))
            start += num_iters
        return cls(phases=tuple(phases), total_iter=start, scale=baseline.scale,
                   base_lq_size=baseline.lq_size, base_num_frame=baseline.num_frame,
                   base_batch_size=baseline.batch_size, base_total_iter=baseline.total_iter)

    @classmethod
    def from_dict(cls, d: Mapping) -> MultigridSchedule:
        """Inverse of :meth:`to_dict`; validates that the phases still tile ``[0, total_iter)``."""
        try:
            phases = tuple(Phase(**phase) for phase in d['phases'])
            return cls(phases=phases, total_iter=d['total_iter'], scale=d['scale'],
                       base_lq_size=d['base_lq_size'], base_num_frame=d['base_num_frame'],
                       base_batch_size=d['base_batch_size'], base_total_iter=d.get('base_total_iter'))
        except (KeyError, TypeError) as err:
            raise ScheduleError(f'schedule: not a serialised MultigridSchedule ({err})') from None

    def to_dict(self) -> dict:
        return {
            'total_iter': self.total_iter,
            'scale': self.scale,
            'base_lq_size': self.base_lq_size,
            'base_num_frame': self.base_num_frame,
            'base_batch_size': self.base_batch_size,
            'base_total_iter': self.base_total_iter,
            'phases': [phase.to_dict() for phase in self.phases],
        }

    # ------------------------------------------------------------------ queries
    def phase_at(self, it: int) -> Phase:
        """Phase of 0-based iteration ``it`` (number of completed iterations)."""
        if not 0 <= it < self.total_iter:
            raise ValueError(f'iteration {it} is outside the schedule [0, {self.total_iter})')
        return self.phases[bisect.bisect_right(self._start_iters, it) - 1]

    def batch_size_at(self, it: int) -> int:
        return self.phase_at(it).batch_size_per_gpu

    def samples_before(self, it: int) -> int:
        """Per-GPU samples drawn in iterations ``[0, it)``; lets a sampler resume mid-run."""
        if not 0 <= it <= self.total_iter:
            raise ValueError(f'iteration {it} is outside the schedule [0, {self.total_iter}]')
        samples = 0
        for phase in self.phases:
            if phase.start_iter >= it:
                break
            samples += (min(it, phase.end_iter) - phase.start_iter) * phase.batch_size_per_gpu
        return samples

    @property
    def total_clips(self) -> int:
        """Per-GPU clips of the whole run."""
        return self.samples_before(self.total_iter)

    def iteration_for_baseline(self, baseline_iter: int) -> int:
        """This schedule's iteration count for an iteration count of the options (warmup, scheduler periods),
        which count iterations of the fixed-shape run (`base_total_iter`). The identity unless the schedule has its
        own iteration count (`batch_scaling: constant_compute`); then the same fraction of the run's clips: the
        first iteration by which that many clips are drawn, 0 and base_total_iter mapping to 0 and total_iter."""
        if self.total_iter == self.base_total_iter:
            return baseline_iter
        if baseline_iter <= 0:
            return 0
        if baseline_iter >= self.base_total_iter:
            return self.total_iter
        target = Fraction(baseline_iter, self.base_total_iter) * self.total_clips
        drawn = 0
        for phase in self.phases:
            if drawn + phase.num_clips >= target:
                return phase.start_iter + math.ceil((target - drawn) / phase.batch_size_per_gpu)
            drawn += phase.num_clips
        return self.total_iter

    def relative_cost(self, phase: Phase) -> float:
        """Per-iteration cost of ``phase`` relative to the baseline, (T*S^2*B)/(T0*S0^2*B0)."""
        return float(self._exact_cost(phase))

    def compute_shares(self) -> list[float]:
        """Each phase's share of the whole run's compute; sums to 1."""
        compute = [self._exact_cost(p) * p.num_iters for p in self.phases]
        total = sum(compute)
        return [float(c / total) for c in compute]

    def predicted_speedup(self) -> float:
        """Compute of the fixed-shape run (``base_total_iter`` baseline iterations) divided by this schedule's."""
        return float(self.base_total_iter / sum(self._exact_cost(p) * p.num_iters for p in self.phases))

    def _exact_cost(self, phase: Phase) -> Fraction:
        return Fraction(phase.num_frame * phase.lq_size**2 * phase.batch_size_per_gpu,
                        self.base_num_frame * self.base_lq_size**2 * self.base_batch_size)

    @property
    def is_multigrid(self) -> bool:
        return len(self.phases) > 1

    @property
    def max_batch_size(self) -> int:
        return max(p.batch_size_per_gpu for p in self.phases)

    @property
    def min_batch_size(self) -> int:
        return min(p.batch_size_per_gpu for p in self.phases)

    @property
    def max_lq_size(self) -> int:
        return max(p.lq_size for p in self.phases)

    @property
    def min_lq_size(self) -> int:
        return min(p.lq_size for p in self.phases)

    @property
    def max_num_frame(self) -> int:
        return max(p.num_frame for p in self.phases)

    @property
    def min_num_frame(self) -> int:
        return min(p.num_frame for p in self.phases)

    # ------------------------------------------------------------------ validation against model/data
    def check_limits(self, *, min_lq_size: int = 1, lq_size_multiple: int = 1, min_num_frame: int = 1,
                     max_lq_size: int | tuple[int, int] | None = None, max_num_frame: int | None = None,
                     model_name: str | None = None) -> None:
        """Raise ScheduleError naming the option to change if a shape breaks a model or data limit.

        ``max_lq_size`` is the smallest LR frame, as a side length or a ``(height, width)`` pair.
        """
        model = f' ({model_name})' if model_name else ''
        lq_sizes = sorted({p.lq_size for p in self.phases})
        if lq_sizes[0] < min_lq_size:
            raise ScheduleError(self._spatial_message(
                f'LR patch {lq_sizes[0]} is below the model minimum {min_lq_size}{model}', '>=', min_lq_size))
        for lq_size in lq_sizes:
            if lq_size % lq_size_multiple:
                raise ScheduleError(self._spatial_message(
                    f'LR patch {lq_size} is not a multiple of {lq_size_multiple} required by the model{model}',
                    'divisible by', lq_size_multiple))
        if max_lq_size is not None:
            height, width = (max_lq_size, max_lq_size) if isinstance(max_lq_size, int) else max_lq_size
            if lq_sizes[-1] > min(height, width):
                raise ScheduleError(self._spatial_message(
                    f'LR patch {lq_sizes[-1]} exceeds the smallest LR frame {height}x{width}', '<=',
                    min(height, width)))
        if self.min_num_frame < min_num_frame:
            raise ScheduleError(self._short_clip_message(min_num_frame, model))
        if max_num_frame is not None and self.max_num_frame > max_num_frame:
            raise ScheduleError(f'datasets.train.num_frame: {self.max_num_frame} frames exceed the shortest clip '
                                f'({max_num_frame} frames); use num_frame <= {max_num_frame}')

    def _uses_baseline_shape(self) -> bool:
        """True for a fixed-shape run, whose shape comes from the dataset options, not the multigrid section."""
        only = self.phases[0]
        return not self.is_multigrid and (only.lq_size, only.num_frame) == (self.base_lq_size, self.base_num_frame)

    def _spatial_message(self, problem: str, relation: str, lq_bound: int) -> str:
        """Name the key that sets the LR patch and phrase the fix in that key's units."""
        if self._uses_baseline_shape():
            return f'datasets.train.gt_size: {problem}; use gt_size {relation} {lq_bound * self.scale}'
        return f'{SECTION}.spatial_sizes: {problem}; use sizes {relation} {lq_bound}'

    def _short_clip_message(self, min_num_frame: int, model: str) -> str:
        if self._uses_baseline_shape():
            return (f'datasets.train.num_frame: {self.min_num_frame} frames are below the model minimum '
                    f'{min_num_frame}{model}; use num_frame >= {min_num_frame}')
        return (f'{SECTION}.temporal_fractions: clip of {self.min_num_frame} frames is below the model minimum '
                f'{min_num_frame}{model}; use fractions f with floor(num_frame * f) >= {min_num_frame}')

    # ------------------------------------------------------------------ display
    def format_table(self) -> str:
        """Human-readable phase table followed by the predicted speedup."""
        header = ('phase', 'stage', 'iters [start, end)', 'iters', 'lq_size', 'gt_size', 'num_frame', 'batch/gpu',
                  'clips/gpu', 'lr_factor', 'cost/iter', 'compute')
        rows = [header]
        for phase, share in zip(self.phases, self.compute_shares()):
            rows.append((str(phase.index), 'ft' if phase.finetune else str(phase.stage),
                         f'{phase.start_iter}-{phase.end_iter}', str(phase.num_iters), str(phase.lq_size),
                         str(phase.gt_size), str(phase.num_frame), str(phase.batch_size_per_gpu),
                         str(phase.num_clips), f'{phase.lr_factor:.4g}',
                         f'{self.relative_cost(phase):.3f}', f'{share:.1%}'))
        widths = [max(len(row[col]) for row in rows) for col in range(len(header))]
        lines = ['  '.join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows]
        lines.append(f'iterations: {self.total_iter} (options: {self.base_total_iter}), clips/gpu: {self.total_clips} '
                     f'(options: {self.base_total_iter * self.base_batch_size})')
        lines.append(f'predicted speedup over fixed-shape baseline: {self.predicted_speedup():.2f}x')
        return '\n'.join(lines)


# ====================================================================== planning helpers
@dataclass(frozen=True)
class _Baseline:
    """The fixed-shape run described by the dataset options."""

    total_iter: int
    scale: int
    lq_size: int
    num_frame: int
    batch_size: int


@dataclass(frozen=True)
class _PlannedPhase:
    """A phase's shape before iterations and batch sizes are assigned."""

    stage: int
    lq_size: int
    num_frame: int
    finetune: bool = False


def _batch_sizer(base_batch_size: int, batch_scaling: str, full_shape: _PlannedPhase, max_batch_size: int | None):
    """Per-phase batch size: constant, or B0 x T0*S0^2 / (T*S^2) rounded half up, so T*S^2*B stays that of the
    full shape (Wu et al. 2020), capped by `max_batch_size_per_gpu`."""
    if batch_scaling == 'none':
        return lambda plan: base_batch_size
    reference = base_batch_size * full_shape.num_frame * full_shape.lq_size**2
    cap = math.inf if max_batch_size is None else max_batch_size

    def scaled_batch(plan: _PlannedPhase) -> int:
        return min(cap, max(1, _round_half_up(Fraction(reference, plan.num_frame * plan.lq_size**2))))

    return scaled_batch


def _round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def _batch_lr_factor(batch_size: int, base_batch_size: int, rule: str, max_factor: Fraction | None):
    """LR factor of a phase's batch: B / B0 (linear) or its square root (sqrt), at most max_factor."""
    factor = Fraction(batch_size, base_batch_size)
    if rule == 'sqrt':
        factor = math.sqrt(factor)
    return factor if max_factor is None or factor <= max_factor else max_factor


def _coster(baseline: _Baseline, batch_of):
    """Exact per-iteration cost of a planned phase relative to the baseline shape."""
    base_cost = baseline.num_frame * baseline.lq_size**2 * baseline.batch_size
    return lambda plan: Fraction(plan.num_frame * plan.lq_size**2 * batch_of(plan), base_cost)


def _stage_and_phase_shares(stage_phases, stage_split, phase_split, cost_of) -> list[Fraction]:
    """Exact share of the (non-finetune) iterations for every phase, in phase order."""
    within_stage = [_split_weights(phase_split, [cost_of(p) for p in phases]) for phases in stage_phases]
    # A stage's mean per-iteration cost under its phase split; cost balancing divides by it.
    stage_costs = [sum(w * cost_of(p) for w, p in zip(weights, phases))
                   for weights, phases in zip(within_stage, stage_phases)]
    stage_weights = _split_weights(stage_split, stage_costs)
    return [stage_weight * w for stage_weight, weights in zip(stage_weights, within_stage) for w in weights]


def _split_weights(split, costs: Sequence[Fraction]) -> list[Fraction]:
    """Iteration weights summing to 1: equal, inversely proportional to cost, or user-given."""
    if split == 'equal':
        raw = [Fraction(1)] * len(costs)
    elif split == 'cost_balanced':
        raw = [1 / cost for cost in costs]
    else:
        raw = list(split)
    total = sum(raw)
    return [w / total for w in raw]


def _apportion(total: int, shares: Sequence[Fraction]) -> list[int]:
    """Split ``total`` into positive integers proportional to ``shares`` by largest remainder.

    Parts whose exact quota is below one get exactly one and the rest is re-shared,
    so every phase runs at least once (possible because total >= len(shares)).
    """
    pinned: set[int] = set()
    while True:
        free_total = total - len(pinned)
        free_share = sum(s for i, s in enumerate(shares) if i not in pinned)
        quotas = {i: free_total * s / free_share for i, s in enumerate(shares) if i not in pinned}
        too_small = {i for i, quota in quotas.items() if quota < 1}
        if not too_small:
            break
        pinned |= too_small
    counts = [1] * len(shares)
    for i, quota in quotas.items():
        counts[i] = math.floor(quota)
    leftover = free_total - sum(counts[i] for i in quotas)
    by_remainder = sorted(quotas, key=lambda i: (counts[i] - quotas[i], i))  # largest remainder, then earliest
    for i in by_remainder[:leftover]:
        counts[i] += 1
    return counts


def _check_coverage(phases: Sequence[Phase], total_iter: int) -> None:
    """Phases must tile [0, total_iter) in order, each at least one iteration long."""
    if not phases:
        raise ScheduleError('schedule.phases: a schedule needs at least one phase')
    expected_start = 0
    for position, phase in enumerate(phases):
        if phase.index != position or phase.start_iter != expected_start or phase.num_iters < 1:
            raise ScheduleError(f'schedule.phases[{position}]: expected index {position} starting at '
                                f'{expected_start} with >= 1 iteration, got {phase}')
        expected_start = phase.end_iter
    if expected_start != total_iter:
        raise ScheduleError(f'schedule.phases: phases end at {expected_start}, total_iter is {total_iter}')


# ====================================================================== option readers
# A multigrid key set to null (`key: ~` or `key:` in YAML) means "use the default", like an absent key.
_MISSING = object()


def _lookup(opt: Mapping, path: str, required: bool = True) -> Any:
    """Value at a dotted key path; ScheduleError names the path when it is missing."""
    node: Any = opt
    for depth, key in enumerate(path.split('.')):
        if not isinstance(node, Mapping):
            parent = '.'.join(path.split('.')[:depth]) or 'options'
            raise ScheduleError(f'{parent}: expected a mapping, got {node!r}')
        node = node.get(key, _MISSING)
        if node is _MISSING:
            if required:
                raise ScheduleError(f'{path}: required option is missing')
            return None
    return node


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


def _exact(value) -> Fraction:
    """Decimal-exact Fraction of a YAML number, so 0.75 is exactly 3/4."""
    return Fraction(str(value)) if isinstance(value, float) else Fraction(value)


def _positive_int(key: str, value) -> int:
    if not _is_int(value) or value < 1:
        raise ScheduleError(f'{key}: expected a positive int, got {value!r}')
    return value


def _read_baseline(opt: Mapping, fixed_shape: bool = False) -> _Baseline:
    """The full training shape. A fixed-shape run of single-input data (frame interpolation tuples) has no
    `num_frame`: it counts as 1 frame, which only the cost model reads."""
    total_iter = _lookup(opt, 'train.total_iter')
    # YAML may deliver values such as 3.0e+5 as floats; accept them when integral.
    if isinstance(total_iter, float) and total_iter.is_integer():
        total_iter = int(total_iter)
    scale = _positive_int('scale', _lookup(opt, 'scale'))
    num_frame = _lookup(opt, 'datasets.train.num_frame', required=not fixed_shape)
    gt_size = _positive_int('datasets.train.gt_size', _lookup(opt, 'datasets.train.gt_size'))
    if gt_size % scale:
        raise ScheduleError(f'datasets.train.gt_size: {gt_size} is not divisible by scale {scale}; '
                            f'use a multiple of {scale}')
    return _Baseline(
        total_iter=_positive_int('train.total_iter', total_iter),
        scale=scale,
        lq_size=gt_size // scale,
        num_frame=_positive_int('datasets.train.num_frame', 1 if num_frame is None else num_frame),
        batch_size=_positive_int('datasets.train.batch_size_per_gpu',
                                 _lookup(opt, 'datasets.train.batch_size_per_gpu')),
    )


def _reject_unknown_keys(section: Mapping) -> None:
    unknown = [key for key in section if key not in MULTIGRID_KEYS]
    if unknown:
        raise ScheduleError(f'{SECTION}.{unknown[0]}: unknown option; valid keys are {", ".join(MULTIGRID_KEYS)}')


def _require_strictly_increasing(key: str, values: Sequence, what: str) -> None:
    if any(later <= earlier for earlier, later in zip(values, values[1:])):
        raise ScheduleError(f'{key}: {what} {list(values)} must be strictly increasing')


def _read_spatial_sizes(section: Mapping, base_lq_size: int) -> tuple[int, ...]:
    key = f'{SECTION}.spatial_sizes'
    sizes = section.get('spatial_sizes')
    if sizes is None:
        if base_lq_size < 2:
            raise ScheduleError(f'{key}: the default [lq // 2, lq] needs a baseline LR patch >= 2, '
                                f'got gt_size / scale = {base_lq_size}; set spatial_sizes explicitly')
        return (base_lq_size // 2, base_lq_size)
    if not isinstance(sizes, (list, tuple)) or not sizes or not all(_is_int(s) and s > 0 for s in sizes):
        raise ScheduleError(f'{key}: expected a list of positive ints, got {sizes!r}')
    _require_strictly_increasing(key, sizes, 'sizes')
    return tuple(sizes)


def _read_frame_counts(section: Mapping, num_frame: int) -> tuple[int, ...]:
    """Clip length per temporal fraction: max(1, floor(T * f)), computed exactly."""
    key = f'{SECTION}.temporal_fractions'
    fractions = section.get('temporal_fractions')
    if fractions is None:
        fractions = DEFAULT_TEMPORAL_FRACTIONS
    if (not isinstance(fractions, (list, tuple)) or not fractions
            or not all(_is_number(f) and 0 < f <= 1 for f in fractions)):
        raise ScheduleError(f'{key}: expected a list of fractions in (0, 1], got {fractions!r}')
    _require_strictly_increasing(key, fractions, 'fractions')
    counts = tuple(max(1, math.floor(_exact(f) * num_frame + FRAME_COUNT_TOLERANCE)) for f in fractions)
    if any(later <= earlier for earlier, later in zip(counts, counts[1:])):
        raise ScheduleError(f'{key}: clip lengths {list(counts)} for num_frame {num_frame} must be strictly '
                            f'increasing; use fewer or more spread-out fractions')
    return counts


def _read_positive_int(section: Mapping, name: str, default: int) -> int:
    value = section.get(name)
    return default if value is None else _positive_int(f'{SECTION}.{name}', value)


def _read_split(section: Mapping, name: str, num_parts: int):
    """'equal', 'cost_balanced', or a tuple of exact fractions (one per part) summing to 1."""
    key = f'{SECTION}.{name}'
    split = section.get(name)
    if split is None:
        return 'equal'
    if isinstance(split, str) and split in SPLIT_MODES:
        return split
    if not isinstance(split, (list, tuple)) or not all(_is_number(f) and f > 0 for f in split):
        raise ScheduleError(f"{key}: expected 'equal', 'cost_balanced' or a list of {num_parts} positive "
                            f'fractions, got {split!r}')
    if len(split) != num_parts:
        raise ScheduleError(f'{key}: expected {num_parts} fractions, got {len(split)}')
    total = sum(split)
    if abs(total - 1) > SPLIT_SUM_TOLERANCE:
        raise ScheduleError(f'{key}: fractions sum to {total:g}, must sum to 1')
    return tuple(_exact(f) for f in split)


def _read_finetune_fraction(section: Mapping) -> Fraction:
    key = f'{SECTION}.finetune_fraction'
    value = section.get('finetune_fraction')
    if value is None:
        return Fraction(0)
    if not _is_number(value) or not 0 <= value < 1:
        raise ScheduleError(f'{key}: expected a number in [0, 1), got {value!r}')
    return _exact(value)


def _read_choice(section: Mapping, name: str, choices: Sequence[str]) -> str:
    value = section.get(name)
    if value is None:
        return choices[0]
    if value not in choices:
        raise ScheduleError(f'{SECTION}.{name}: expected one of {", ".join(choices)}, got {value!r}')
    return value


def _read_max_batch_size(section: Mapping, base_batch_size: int) -> int | None:
    key = f'{SECTION}.max_batch_size_per_gpu'
    value = section.get('max_batch_size_per_gpu')
    if value is None:
        return None
    if not _is_int(value) or value < base_batch_size:
        raise ScheduleError(f'{key}: expected an int >= datasets.train.batch_size_per_gpu ({base_batch_size}), '
                            f'got {value!r}')
    return value


def _read_max_lr_factor(section: Mapping) -> Fraction | None:
    key = f'{SECTION}.max_lr_factor'
    value = section.get('max_lr_factor')
    if value is None:
        return None
    if not _is_number(value) or value < 1:
        raise ScheduleError(f'{key}: expected a number >= 1, got {value!r}')
    return _exact(value)


def _read_stage_lr_factors(section: Mapping, num_stages: int) -> tuple[Fraction, ...]:
    key = f'{SECTION}.stage_lr_factors'
    factors = section.get('stage_lr_factors')
    if factors is None:
        return (Fraction(1),) * num_stages
    if not isinstance(factors, (list, tuple)) or not all(_is_number(f) and f > 0 for f in factors):
        raise ScheduleError(f'{key}: expected a list of positive numbers, got {factors!r}')
    if len(factors) != num_stages:
        raise ScheduleError(f'{key}: expected {num_stages} factors (one per spatial stage), got {len(factors)}')
    return tuple(_exact(f) for f in factors)
