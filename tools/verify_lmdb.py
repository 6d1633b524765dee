"""Check an LMDB of frames: every key listed in its meta_info.txt decodes, with the listed shape.

    python tools/verify_lmdb.py datasets/REDS/train_sharp_with_val.lmdb [--meta meta_info_REDS_train.txt]
        [--sample N] [--seed 0]

--meta also checks a video meta file (`clip frames (h,w,c)`): every frame of every clip must be stored with that
shape. Prints one line per problem (missing key, corrupt value, wrong shape) and exits 1 if there is any,
2 if the LMDB or a meta file cannot be read, 0 when everything checked is fine.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from basicsr_multigrid.data.lmdb_builder import LmdbBuildError, verify_lmdb  # noqa: E402

MAX_PROBLEMS_SHOWN = 50


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('lmdb', help='the .lmdb folder')
    parser.add_argument('--meta', help='video meta file to check against as well (clip frames (h,w,c))')
    parser.add_argument('--sample', type=int, help='check a random sample of N keys instead of all')
    parser.add_argument('--seed', type=int, default=0, help='seed of --sample')
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)
    try:
        checked, problems = verify_lmdb(args.lmdb, args.meta, args.sample, args.seed, progress=not args.no_progress)
    except LmdbBuildError as error:
        print(f'verify_lmdb: error: {error}', file=sys.stderr)
        return 2
    for problem in problems[:MAX_PROBLEMS_SHOWN]:
        print(f'{args.lmdb}: {problem}', file=sys.stderr)
    if len(problems) > MAX_PROBLEMS_SHOWN:
        print(f'... and {len(problems) - MAX_PROBLEMS_SHOWN} more', file=sys.stderr)
    verdict = f'{len(problems)} problem(s)' if problems else 'ok'
    print(f'{args.lmdb}: checked {checked} keys: {verdict}')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
