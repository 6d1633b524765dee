"""Time the training step of an option file's model under several precisions / memory formats, side by side.

    python tools/benchmark_step.py -opt options/train/demo/train_BasicVSR_multigrid_demo.yml \\
        --variants fp32 bf16 bf16+channels_last --out step.json [--profile bf16]

For every shape the run trains at (each multigrid phase, or the fixed training shape) and every variant, the
model's own training step (`optimize_parameters`: forward, losses, backward, optimizer step) runs on random
batches of that shape. Variants take turns step by step, so drift of a noisy machine hits them alike; the first
`--warmup` steps of each are not timed. Reported: median seconds per step per shape and variant, each variant's
ratio to the first, and the schedule-weighted ratio (each phase's steps x its time), which is what a whole run
would gain. `--profile VARIANT` adds the operators that take the most time in that variant at the largest shape.

A variant is a precision (fp32, bf16, fp16) optionally followed by `+channels_last` and / or `+compile`; it sets
`train.precision`, `train.channels_last` and `train.compile` of the option file (compilation happens in the
untimed warmup steps, so keep `--warmup` >= 1 with `+compile`).
"""
import argparse
import copy
import json
import os
import statistics
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import torch  # noqa: E402

from basicsr_multigrid.multigrid.schedule import MultigridSchedule  # noqa: E402
from basicsr_multigrid.utils.benchmarking import machine_name  # noqa: E402
from basicsr_multigrid.utils.errors import OptionError  # noqa: E402
from basicsr_multigrid.utils.option_file import read_option_file  # noqa: E402

FLAGS = ('channels_last', 'compile')
PROFILED_OPS = 12
LATE_ITERATION = 10 ** 9  # past train.fix_flow / tsa_iter: the step that most of a run takes, every part training


def parse_variant(text):
    """'bf16+channels_last' -> {'precision': 'bf16', 'channels_last': True}."""
    precision, *flags = text.split('+')
    unknown = [flag for flag in flags if flag not in FLAGS]
    if unknown:
        raise SystemExit(f"error: --variants: {text}: unknown flag {unknown[0]!r} (known: {', '.join(FLAGS)})")
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
    from basicsr.models import build_model
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', required=True, help='training option file')
    parser.add_argument('--variants', nargs='+', default=['fp32', 'bf16'], help='the first is the reference')
    parser.add_argument('--repeats', type=int, default=5, help='timed steps per shape and variant')
    parser.add_argument('--warmup', type=int, default=1, help='untimed steps per shape and variant')
    parser.add_argument('--threads', type=int, help='torch CPU threads (default: torch\'s)')
    parser.add_argument('--profile', metavar='VARIANT', help='also list the slowest operators of this variant')
    parser.add_argument('--out', help='write the results as JSON')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        opt = read_option_file(args.opt)
        device = 'cuda' if torch.cuda.is_available() and opt.get('num_gpu') != 0 else 'cpu'
        variants = {name: parse_variant(name) for name in args.variants}
        shapes = training_shapes(opt)
        medians = measure(opt, variants, shapes, args.repeats, args.warmup, device)
        profiled = profile(opt, parse_variant(args.profile), max(shapes, key=lambda s: s[2] * s[3] ** 2), device) \
            if args.profile else None
    except OptionError as error:
        raise SystemExit(f'error: {error}') from None
    results = {'machine': machine_name(), 'date': time.strftime('%Y-%m-%d'), 'device': device,
               'threads': torch.get_num_threads(), 'options': args.opt, 'repeats': args.repeats,
               'shapes': [dict(zip(('iters', 'batch', 'num_frame', 'lq_size'), shape)) for shape in shapes],
               's_per_step': medians, 'speedup': summarize(shapes, medians)}
    if profiled is not None:
        results['profile'] = {'variant': args.profile, 'ops': profiled}
    reference = args.variants[0]
    for name, speedup in results['speedup'].items():
        per_shape = ', '.join(f'{s:.2f}x' for s in speedup['speedup_per_shape'])
        print(f"{name}: {speedup['run_speedup']:.2f}x over {reference} for the whole run (per shape {per_shape})")
    for op in results.get('profile', {}).get('ops', []):
        print(f"  {args.profile}: {op['op']:<40} {op['share']:6.1%}  {op['calls']} calls/step")
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
