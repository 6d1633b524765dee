"""Time the pure-PyTorch ST-MFNet ops: median forward and forward+backward wall time, and memory.

    python tools/benchmark_stmfnet_ops.py                                  # 1x3x256x256 frames on CPU
    python tools/benchmark_stmfnet_ops.py --size 64 --repeats 3 --out ops.json
    python tools/benchmark_stmfnet_ops.py --device cuda --batch 2

Workloads at frame size S (ST-MFNet's shapes): AdaCoF 5x5, dilation 1, on a replicate-padded Bx3xSxS frame;
softmax splatting of a Bx3xSxS frame; PWC-Net correlation (displacement 4, 81 channels) of Bx32x(S/4)x(S/4)
features (pyramid level 2), by shifts and by unfold; the 5-level Laplacian-pyramid loss on Bx3xSxS.

Memory, two numbers per op:
* ``peak_mib``: peak extra memory of one forward+backward above what was allocated before it. On CUDA from
  ``torch.cuda.max_memory_allocated``; on CPU from the allocation events of ``torch.profiler`` (profile_memory=True),
  summed in time order (None when the profiler does not expose them).
* ``largest_mib``: the largest single intermediate tensor, from the shapes (analytic), as a sanity check.
"""
import argparse
import json
import platform
import statistics
import sys
import time
from os import path as osp

import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from basicsr_multigrid.archs.ops import adacof, correlation, replicate_pad_for_adacof, softsplat  # noqa: E402
from basicsr_multigrid.losses.laplacian_pyramid_loss import LaplacianPyramidLoss  # noqa: E402

MIB = 2 ** 20


def make_workloads(batch, size, device, dtype):
    """(name, shape string, inputs needing grad, callable returning a scalar, largest intermediate in elements)."""
    gen = torch.Generator(device='cpu').manual_seed(0)

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen, dtype=dtype) * scale).to(device).requires_grad_()

    workloads = []
    taps = 25
    frame = randn(batch, 3, size, size)
    weight = randn(batch, taps, size, size)
    alpha, beta = randn(batch, taps, size, size, scale=2.0), randn(batch, taps, size, size, scale=2.0)
    workloads.append((
        'adacof 5x5 d1', f'{batch}x3x{size}x{size}', [frame, weight, alpha, beta],
        lambda: adacof(replicate_pad_for_adacof(frame), weight.softmax(1), alpha, beta).sum(),
        batch * 3 * taps * size * size))  # one corner gather, (B, C, 25, H, W)

    flow, metric = randn(batch, 2, size, size, scale=3.0), randn(batch, 1, size, size)
    workloads.append((
        'softsplat softmax', f'{batch}x3x{size}x{size}', [frame, flow, metric],
        lambda: softsplat(frame, flow, metric, mode='softmax').sum(),
        batch * 4 * size * size))  # one corner's weighted (B*H*W, C+1) contribution

    level = max(size // 4, 1)
    first, second = randn(batch, 32, level, level), randn(batch, 32, level, level)
    for method in ('shift', 'unfold'):
        largest = batch * 32 * 81 * level * level if method == 'unfold' else batch * 81 * level * level
        workloads.append((
            f'correlation {method}', f'{batch}x32x{level}x{level}', [first, second],
            lambda method=method: correlation(first, second, 4, 1, method=method).sum(), largest))

    if size % 16 == 0 and size >= 32:
        loss = LaplacianPyramidLoss(max_levels=5, channels=3, reduction='sum').to(device=device, dtype=dtype)
        target = torch.rand(batch, 3, size, size, generator=gen, dtype=dtype).to(device)
        workloads.append((
            'laplacian loss 5 lv', f'{batch}x3x{size}x{size}', [frame], lambda: loss(frame, target),
            batch * 3 * size * size))  # one pyramid level / zero-inserted image at full resolution
    return workloads


def synchronize(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def median_ms(step, device, warmup, repeats):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def peak_extra_bytes(step, device):
    """Peak memory allocated during one call of ``step`` above the level before it."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    try:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            step()
        events = [e for e in prof.profiler.kineto_results.events() if e.name() == '[memory]']
        current = peak = 0
        for event in sorted(events, key=lambda e: e.start_ns()):
            current += event.nbytes()
            peak = max(peak, current)
        return peak if events else None
    except Exception:  # private profiler API: report "not measured" rather than fail the benchmark
        return None


def run(args):
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for name, shape, inputs, forward, largest in make_workloads(args.batch, args.size, device, dtype):

        def forward_only():
            with torch.no_grad():
                forward()

        def forward_backward():
            for tensor in inputs:
                tensor.grad = None
            forward().backward()

        rows.append({
            'op': name, 'shape': shape,
            'forward_ms': median_ms(forward_only, device, args.warmup, args.repeats),
            'forward_backward_ms': median_ms(forward_backward, device, args.warmup, args.repeats),
            'peak_mib': (lambda b: None if b is None else b / MIB)(peak_extra_bytes(forward_backward, device)),
            'largest_mib': largest * torch.tensor([], dtype=dtype).element_size() / MIB,
        })
    return {
        'device': str(device) if device.type == 'cpu' else torch.cuda.get_device_name(device),
        'cpu': platform.processor() or platform.machine(), 'threads': torch.get_num_threads(),
        'torch': torch.__version__, 'dtype': args.dtype, 'batch': args.batch, 'size': args.size,
        'warmup': args.warmup, 'repeats': args.repeats, 'results': rows,
    }


def print_table(report):
    print(f"device {report['device']} ({report['threads']} threads), torch {report['torch']}, {report['dtype']}, "
          f"median of {report['repeats']} after {report['warmup']} warm-up")
    header = f"{'op':<22}{'shape':<16}{'fwd ms':>10}{'fwd+bwd ms':>12}{'peak MiB':>10}{'largest MiB':>13}"
    print(header)
    print('-' * len(header))
    for row in report['results']:
        peak = '-' if row['peak_mib'] is None else f"{row['peak_mib']:.1f}"
        print(f"{row['op']:<22}{row['shape']:<16}{row['forward_ms']:>10.2f}{row['forward_backward_ms']:>12.2f}"
              f"{peak:>10}{row['largest_mib']:>13.1f}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', type=int, default=256, help='frame height = width (default 256)')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--dtype', default='float32', choices=['float32', 'float64'])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--threads', type=int, default=0, help='torch.set_num_threads (0: leave as is)')
    parser.add_argument('--out', help='also write the report as JSON here')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    report = run(args)
    print_table(report)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
        print(f'wrote {args.out}')
    return report


if __name__ == '__main__':
    main()
