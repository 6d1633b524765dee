"""The cost of the pure-PyTorch ST-MFNet ops (AdaCoF, softmax splatting, correlation, the Laplacian-pyramid loss):
median forward and forward+backward wall time and memory (tools/benchmark_stmfnet_ops.py is its command line; its
help says what is measured)."""
import platform
import statistics
import time

import torch

from basicsr_multigrid.archs.ops import adacof, correlation, replicate_pad_for_adacof, softsplat
from basicsr_multigrid.losses.laplacian_pyramid_loss import LaplacianPyramidLoss

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


def measure_ops(batch, size, device_name, dtype_name, warmup, repeats):
    """The report of every workload: median forward and forward+backward ms, peak and largest MiB."""
    device, dtype = torch.device(device_name), getattr(torch, dtype_name)
    rows = []
    for name, shape, inputs, forward, largest in make_workloads(batch, size, device, dtype):

        def forward_only():
            with torch.no_grad():
                forward()

        def forward_backward():
            for tensor in inputs:
                tensor.grad = None
            forward().backward()

        rows.append({
            'op': name, 'shape': shape,
            'forward_ms': median_ms(forward_only, device, warmup, repeats),
            'forward_backward_ms': median_ms(forward_backward, device, warmup, repeats),
            'peak_mib': (lambda b: None if b is None else b / MIB)(peak_extra_bytes(forward_backward, device)),
            'largest_mib': largest * torch.tensor([], dtype=dtype).element_size() / MIB,
        })
    return {
        'device': str(device) if device.type == 'cpu' else torch.cuda.get_device_name(device),
        'cpu': platform.processor() or platform.machine(), 'threads': torch.get_num_threads(),
        'torch': torch.__version__, 'dtype': dtype_name, 'batch': batch, 'size': size,
        'warmup': warmup, 'repeats': repeats, 'results': rows,
    }
