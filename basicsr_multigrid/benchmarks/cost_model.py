"""A cost model of the training step on the machine at hand: seconds per step at (batch B, clip length T, LR patch
S) fitted as

    s_per_step = fixed + per_frame * B*T + per_pixel * B*T*S^2

from timings of the option file's own training step on a small grid of shapes (tools/benchmark_step.py --fit), and
its predictions of a schedule's training time and speedup (tools/show_schedule.py --cost-model).

Why this form: the recurrent VSR models process every frame of every clip (B*T frames per step) with convolutions
over the LR patch (S^2 pixels; the x scale^2 of the upsampler is a constant factor per model, so S^2 and GT pixels
fit alike), plus per-frame work that does not follow the patch (optical flow networks that pad small patches up to
a fixed size, tensor bookkeeping, the kernel launches of each frame), plus a fixed part per step (the optimizer
step, zero_grad, the loss). The fit weighs each shape by 1/time, i.e. it minimises relative errors: the goal is a
percentage and timing noise is multiplicative. Coefficients are non-negative (non-negative least squares); a
negative cost would be a fit artefact that extrapolates badly.

Pure numpy (and stdlib) unless timing: show_schedule imports it without torch.
"""
import itertools
import json
import time

import numpy as np

from basicsr_multigrid.utils.errors import OptionError
from basicsr_multigrid.utils.option_file import read_json_file

KIND = 'step_cost_model'
TERMS = ('fixed_s', 'per_frame_s', 'per_pixel_s')
FORM = 's_per_step = fixed_s + per_frame_s * B*T + per_pixel_s * B*T*lq_size^2'
# The grids: batch x frames x LR patch, a Latin square over three levels of each (every level three times, the
# largest shape included), so that 9 timed shapes span the 27. Neither holds a phase shape of the demo schedules
# (their clips are 5 and 10 frames, or 2 and 4 in the tests' tiny runs at B1), and `fit_grid` drops any shape of
# the run being predicted that still coincides.
GRID_LEVELS = {'default': ((1, 2, 4), (2, 4, 6), (8, 16, 32)),
               'small': ((1, 2), (3, 5), (8, 12))}


def fit_grid(name='default', avoid=()):
    """[(batch, frames, lq size)] to time: the named grid minus the shapes in `avoid` (the runs to predict)."""
    if name not in GRID_LEVELS:
        raise OptionError(f"--fit-grid: unknown grid {name!r} (known: {', '.join(GRID_LEVELS)})")
    batches, frames, sizes = GRID_LEVELS[name]
    if len(batches) == 3:
        shapes = [(b, t, sizes[(j - i + 2) % 3]) for i, b in enumerate(batches) for j, t in enumerate(frames)]
    else:  # 2 levels: all 8 corners
        shapes = list(itertools.product(batches, frames, sizes))
    avoid = {tuple(shape) for shape in avoid}
    return [shape for shape in shapes if shape not in avoid]


def features(batch, frames, lq_size):
    frames_per_step = batch * frames
    return [1.0, float(frames_per_step), float(frames_per_step * lq_size ** 2)]


def nonnegative_least_squares(a, b):
    """argmin ||a x - b|| over x >= 0, exactly, by trying every set of free columns (a has a few columns)."""
    best, best_norm = np.zeros(a.shape[1]), float(np.sum(b ** 2))
    for size in range(1, a.shape[1] + 1):
        for columns in itertools.combinations(range(a.shape[1]), size):
            solution = np.linalg.lstsq(a[:, columns], b, rcond=None)[0]
            if np.all(solution >= 0):
                x = np.zeros(a.shape[1])
                x[list(columns)] = solution
                norm = float(np.sum((a @ x - b) ** 2))
                if norm < best_norm:
                    best, best_norm = x, norm
    return best


def fit(shapes, seconds):
    """Coefficients {term: seconds} of the non-negative fit minimising relative errors, and per-shape residuals."""
    if len(shapes) < len(TERMS):
        raise OptionError(f'cost model: {len(shapes)} timed shapes cannot fit {len(TERMS)} terms')
    seconds = np.asarray(seconds, dtype=float)
    a = np.array([features(*shape) for shape in shapes])
    weights = 1.0 / seconds
    x = nonnegative_least_squares(a * weights[:, None], np.ones(len(shapes)))
    coefficients = dict(zip(TERMS, map(float, x)))
    grid = []
    for shape, measured in zip(shapes, seconds):
        predicted = predict_step(coefficients, *shape)
        grid.append({'batch': shape[0], 'num_frame': shape[1], 'lq_size': shape[2], 's_per_step': float(measured),
                     'predicted_s': predicted, 'rel_error': predicted / measured - 1})
    return coefficients, grid


def coefficients_of(model):
    return model['coefficients'] if 'coefficients' in model else model


def predict_step(model, batch, frames, lq_size):
    """Predicted seconds of one training step; `model` is the JSON (or only its coefficients)."""
    coefficients = coefficients_of(model)
    return float(sum(coefficients[term] * value for term, value in zip(TERMS, features(batch, frames, lq_size))))


def phase_shape(phase):
    """(iterations, batch, frames, lq size) of a schedule Phase, a recorded phase dict or such a tuple."""
    if isinstance(phase, dict):
        return phase['iters'], phase['batch_size_per_gpu'], phase['num_frame'], phase['lq_size']
    if hasattr(phase, 'num_iters'):
        return phase.num_iters, phase.batch_size_per_gpu, phase.num_frame, phase.lq_size
    return tuple(phase)


def predict_phases(model, phases):
    """[predicted seconds] per phase: its iterations x the predicted step."""
    phases = getattr(phases, 'phases', phases)
    return [iters * predict_step(model, batch, frames, size) for iters, batch, frames, size in map(phase_shape, phases)]


def predict_run(model, phases):
    """Predicted training seconds of a schedule (or a list of phases): the sum over its phases."""
    return sum(predict_phases(model, phases))


def baseline_phase(schedule):
    """The fixed-shape run of the same option file: the file's total_iter steps (a sample-budget schedule has fewer)
    at the full shape and base batch."""
    return (schedule.base_total_iter, schedule.base_batch_size, schedule.base_num_frame, schedule.base_lq_size)


def schedule_prediction(model, schedule):
    """Per-phase predicted seconds, the totals of the schedule and its fixed-shape baseline, and the speedup."""
    per_phase = predict_phases(model, schedule)
    baseline = predict_run(model, [baseline_phase(schedule)])
    return {'phases_s': per_phase, 'multigrid_s': sum(per_phase), 'baseline_s': baseline,
            'speedup': baseline / sum(per_phase)}


def format_prediction(model, schedule, source):
    c, prediction = coefficients_of(model), schedule_prediction(model, schedule)
    iters, batch, frames, size = baseline_phase(schedule)
    lines = [f"cost model {source}: {model['machine']}, {model['threads']} thread(s), {model['device']}: "
             f"s/step = {c['fixed_s']:.4g} + {c['per_frame_s']:.4g} x B*T + {c['per_pixel_s']:.4g} x B*T*lq^2"]
    for phase, seconds in zip(schedule.phases, prediction['phases_s']):
        step = predict_step(model, phase.batch_size_per_gpu, phase.num_frame, phase.lq_size)
        lines.append(f'  phase {phase.index}: {phase.num_iters} iters x {step:.4g} s = {seconds:.1f} s')
    lines.append(f"predicted training time: {prediction['multigrid_s']:.1f} s; fixed-shape baseline "
                 f"({iters} iters at B{batch} T{frames} LR{size}): {prediction['baseline_s']:.1f} s")
    lines.append(f"predicted speedup on this machine: {prediction['speedup']:.2f}x")
    return '\n'.join(lines)


# ---------------------------------------------------------------------- the model's identity, JSON
def network_signature(opt):
    """The option file's network as the fit must match it: network_g without file paths, and the scale."""
    network = {key: value for key, value in (opt.get('network_g') or {}).items() if not key.endswith('_path')}
    return {'network_g': network, 'scale': opt.get('scale')}


def check_matches(model, opt, source):
    """OptionError unless `model` was fitted for the option file's network."""
    expected, fitted = network_signature(opt), {'network_g': model['network_g'], 'scale': model['scale']}
    if fitted == expected:
        return
    arch, fitted_arch = expected['network_g'].get('type'), fitted['network_g'].get('type')
    if arch != fitted_arch:
        raise OptionError(f'--cost-model: {source} is a fit for {fitted_arch}, the option file trains {arch}')
    key = next((k for k in sorted(set(expected['network_g']) | set(fitted['network_g']))
                if expected['network_g'].get(k) != fitted['network_g'].get(k)), 'scale')
    raise OptionError(f'--cost-model: {source} is a fit for another {arch}: network_g.{key} differs'
                      if key != 'scale' else f'--cost-model: {source} is a fit for scale {fitted["scale"]}')


def make_record(opt, options_path, shapes, seconds, *, machine, threads, device, repeats, warmup, grid_name):
    coefficients, grid = fit(shapes, seconds)
    return dict(kind=KIND, machine=machine, date=time.strftime('%Y-%m-%d'), device=device, threads=threads,
                options=options_path, precision='fp32', repeats=repeats, warmup=warmup, grid_name=grid_name,
                form=FORM, coefficients=coefficients, grid=grid,
                max_abs_rel_error=max(abs(g['rel_error']) for g in grid), **network_signature(opt))


def save(model, path):
    with open(path, 'w') as f:
        json.dump(model, f, indent=1)
        f.write('\n')


def load(path):
    """The fit written by `save`; OptionError (one line) when unreadable or not a cost model."""
    model = read_json_file(path, '--cost-model')
    if not isinstance(model, dict) or model.get('kind') != KIND:
        raise OptionError(f'--cost-model: {path}: not a cost model written by tools/benchmark_step.py --fit')
    coefficients = model.get('coefficients')
    if not isinstance(coefficients, dict) or not all(isinstance(coefficients.get(t), (int, float)) for t in TERMS) \
            or not all(key in model for key in ('network_g', 'scale', 'machine', 'threads', 'device')):
        raise OptionError(f'--cost-model: {path}: incomplete cost model (coefficients {", ".join(TERMS)} and the '
                          'network it was fitted for are needed)')
    return model


# ---------------------------------------------------------------------- timing (torch) and the recorded runs
def time_grid(opt, shapes, repeats, warmup, device):
    """Median seconds of the option file's fp32 training step at each (batch, frames, lq size)."""
    from basicsr_multigrid.benchmarks import step_cost
    medians = step_cost.measure(opt, {'fp32': step_cost.parse_variant('fp32')},
                                [(1, *shape) for shape in shapes], repeats, warmup, device)
    return medians['fp32']


def held_out_runs(opt):
    """{run: [(iterations, batch, frames, lq size)]} of the option file: its schedule, and the fixed-shape baseline."""
    from basicsr_multigrid.multigrid.schedule import MultigridSchedule
    schedule = MultigridSchedule.from_options(opt)
    return {'schedule': [phase_shape(p) for p in schedule.phases], 'baseline': [baseline_phase(schedule)]}


def held_out_check(model, runs, measured_step):
    """Predicted against measured (now, in the same process as the fit) step and run time at the shapes of the
    option file's runs; `measured_step` maps (batch, frames, lq size) to median seconds per step."""
    rows = []
    for name, phases in runs.items():
        measured = sum(iters * measured_step[tuple(shape)] for iters, *shape in phases)
        predicted = predict_run(model, phases)
        rows.append({'run': name, 'shapes': [list(p) for p in phases], 'predicted_s': predicted,
                     'measured_s': measured, 'rel_error': predicted / measured - 1})
    return rows


def load_results(path):
    """A results file of tools/benchmark_multigrid.py, whose runs record their phases' s_per_iter."""
    results = read_json_file(path, '--compare')
    if not isinstance(results, dict) or not (results.get('seed_runs') or results.get('runs')):
        raise OptionError(f'--compare: {path}: no recorded runs')
    return results


def compare_runs(model, results, tolerance=0.15):
    """Predicted against measured training time of every run of a benchmark results file (seed runs when it has
    them): measured compute = sum of iterations x s_per_iter, and wall_s."""
    groups = results.get('seed_runs') or {run['name']: [run] for run in results.get('runs', [])}
    rows = []
    for name, runs in groups.items():
        for seed, run in enumerate(runs):
            predicted = predict_run(model, run['phases'])
            compute = sum(p['iters'] * p['s_per_iter'] for p in run['phases'])
            rows.append({'run': name, 'seed_index': seed, 'iters': run['iters'], 'predicted_s': predicted,
                         'measured_compute_s': compute, 'wall_s': run.get('wall_s'),
                         'rel_error': predicted / compute - 1,
                         'rel_error_wall': predicted / run['wall_s'] - 1 if run.get('wall_s') else None,
                         'within_tolerance': abs(predicted / compute - 1) <= tolerance})
    return rows


def compare_speedups(rows):
    """Each run's speedup over the first run (mean over its seeds), predicted and measured: a ratio of two runs on
    the same machine, which machine load shifts less than either run's time."""
    def mean_of(run, key):
        values = [row[key] for row in rows if row['run'] == run]
        return sum(values) / len(values)
    names = list(dict.fromkeys(row['run'] for row in rows))
    reference = names[0]
    out = []
    for name in names[1:]:
        predicted = mean_of(reference, 'predicted_s') / mean_of(name, 'predicted_s')
        measured = mean_of(reference, 'measured_compute_s') / mean_of(name, 'measured_compute_s')
        out.append({'run': name, 'over': reference, 'predicted_speedup': predicted, 'measured_speedup': measured,
                    'rel_error': predicted / measured - 1})
    return out
