"""The training step's cost at every shape a run trains at, under several precisions / memory formats, the variants
taking turns (tools/benchmark_step.py is its command line; its help says what is measured)."""
import copy
import statistics
import time

import torch
from basicsr.models import build_model

from basicsr_multigrid.multigrid.schedule import MultigridSchedule
from basicsr_multigrid.utils.errors import OptionError

FLAGS = ('channels_last', 'compile')
PROFILED_OPS = 12
LATE_ITERATION = 10 ** 9  # past train.fix_flow / tsa_iter: the step that most of a run takes, every part training


def parse_variant(text):
    """'bf16+channels_last' -> {'precision': 'bf16', 'channels_last': True}."""
    precision, *flags = text.split('+')
    unknown = [flag for flag in flags if flag not in FLAGS]
    if unknown:
        raise OptionError(f"--variants: {text}: unknown flag {unknown[0]!r} (known: {', '.join(FLAGS)})")
    return dict({'precision': precision}, **{flag: True for flag in flags})


def training_shapes(opt):
    """[(iterations, batch, frames, lq size)] of the run: one per multigrid phase, else the fixed shape."""
    if (opt.get('train') or {}).get('multigrid') is not None:
        schedule = MultigridSchedule.from_options(opt)
        return [(p.num_iters, p.batch_size_per_gpu, p.num_frame, p.lq_size) for p in schedule.phases]
    train_set = opt['datasets']['train']
    return [(int(opt['train']['total_iter']), train_set['batch_size_per_gpu'], train_set['num_frame'],
             train_set['gt_size'] // opt['scale'])]


def build(opt, variant, device):
    """The option file's model, ready to train, with the variant's training settings."""
    opt = copy.deepcopy(opt)
    opt.update(is_train=True, dist=False, rank=0, world_size=1, num_gpu=1 if device == 'cuda' else 0)
    opt['path'] = dict(opt.get('path') or {}, pretrain_network_g=None, resume_state=None)
    opt['train'].update(variant)
    torch.manual_seed(0)
    return build_model(opt)


def random_batch(shape, scale, device, generator):
    _, batch, frames, size = shape
    lq = torch.rand(batch, frames, 3, size, size, generator=generator)
    gt = torch.rand(batch, frames, 3, size * scale, size * scale, generator=generator)
    return {'lq': lq.to(device), 'gt': gt.to(device)}


def time_step(model, batch, device):
    model.feed_data(batch)
    if device == 'cuda':
        torch.cuda.synchronize()
    started = time.perf_counter()
    model.optimize_parameters(LATE_ITERATION)
    if device == 'cuda':
        torch.cuda.synchronize()
    return time.perf_counter() - started


def measure(opt, variants, shapes, repeats, warmup, device):
    """{variant: [median seconds per step for each shape]}, the variants taking turns."""
    models = {name: build(opt, variant, device) for name, variant in variants.items()}
    generator = torch.Generator().manual_seed(0)
    medians = {name: [] for name in variants}
    for shape in shapes:
        batch = random_batch(shape, opt['scale'], device, generator)
        times = {name: [] for name in variants}
        for step in range(warmup + repeats):
            for name, model in models.items():
                seconds = time_step(model, batch, device)
                if step >= warmup:
                    times[name].append(seconds)
        for name in variants:
            medians[name].append(statistics.median(times[name]))
        print(f'shape B{shape[1]} T{shape[2]} LR{shape[3]}: '
              + ', '.join(f'{name} {medians[name][-1]:.3f} s' for name in variants), flush=True)
    return medians


def profile(opt, variant, shape, device):
    """The operators with the most self time over two steps of `variant` at `shape`."""
    model = build(opt, variant, device)
    batch = random_batch(shape, opt['scale'], device, torch.Generator().manual_seed(0))
    time_step(model, batch, device)
    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA]
                                                          if device == 'cuda' else [])
    with torch.profiler.profile(activities=activities) as profiler:
        for _ in range(2):
            time_step(model, batch, device)
    events = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [{'op': e.key, 'self_s': e.self_cpu_time_total / 2e6, 'share': e.self_cpu_time_total / total,
             'calls': e.count // 2} for e in events[:PROFILED_OPS]]


def summarize(shapes, medians):
    """Per variant: ratio of the first variant's time to this one's per shape and weighted by the run."""
    reference = next(iter(medians))
    total_of = {name: sum(shape[0] * s for shape, s in zip(shapes, times)) for name, times in medians.items()}
    return {name: {'speedup_per_shape': [r / s for r, s in zip(medians[reference], times)],
                   'run_speedup': total_of[reference] / total_of[name]} for name, times in medians.items()}
