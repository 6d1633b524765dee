#!/usr/bin/env python
"""Build the embedded demo video set (REDS-like layout); see basicsr_multigrid/data/demo_data.py.

    python tools/make_demo_data.py --out datasets/demo [--size 256 | --size 1280x720] [--train-frames 20]
        [--val-frames 10] [--seed 0] [--overwrite] [--lmdb]
"""
import argparse
import os
import sys
import time

# Runnable from a checkout without installing the package or setting PYTHONPATH.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from basicsr_multigrid.data.demo_data import make_demo_dataset  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', required=True, help='output directory (must not exist or be empty)')
    p.add_argument('--size', default='256',
                   help='GT frame side in px, or WIDTHxHEIGHT such as 1280x720 (multiples of 4; default 256)')
    p.add_argument('--train-frames', type=int, default=20, help='frames per train clip')
    p.add_argument('--val-frames', type=int, default=10, help='frames per val clip')
    p.add_argument('--test-frames', type=int, help='frames per test clip (default: --val-frames)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--overwrite', action='store_true', help='replace an existing demo dataset at --out')
    p.add_argument('--lmdb', action='store_true', help='also write {train,val}/{GT,LQ}.lmdb (create_lmdb layout)')
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    try:
        info = make_demo_dataset(args.out, size=args.size, train_frames=args.train_frames,
                                 val_frames=args.val_frames, test_frames=args.test_frames, seed=args.seed,
                                 overwrite=args.overwrite, lmdb=args.lmdb)
    except (FileExistsError, ValueError) as e:
        print(f'make_demo_data: error: {e}', file=sys.stderr)
        return 2
    counts = {split: sum(c['split'] == split for c in info['clips'].values()) for split in ('train', 'val', 'test')}
    n_frames = sum(n * info[f'{split}_frames'] for split, n in counts.items())
    print(f"demo data -> {args.out}: {counts['train']} train + {counts['val']} val + {counts['test']} test clips, "
          f'{n_frames} frames ({args.size}px GT, x{info["scale"]} LQ) in {time.perf_counter() - t0:.1f}s; '
          f'bicubic x{info["scale"]} PSNR val {info["bicubic_val_psnr"]:.2f} dB, '
          f'test {info["bicubic_test_psnr"]:.2f} dB')
    return 0


if __name__ == '__main__':
    sys.exit(main())
