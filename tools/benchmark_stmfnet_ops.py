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
import sys
from os import path as osp

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from basicsr_multigrid.benchmarks.op_cost import measure_ops  # noqa: E402


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
    if args.threads:
        torch.set_num_threads(args.threads)
    report = measure_ops(args.batch, args.size, args.device, args.dtype, args.warmup, args.repeats)
    print_table(report)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
        print(f'wrote {args.out}')
    return report


if __name__ == '__main__':
    main()
