"""Lay out a downloaded REDS for BasicSR training: regroup val into train, make REDS4, write meta files.

    python tools/prepare_reds.py --root datasets/REDS [--mode symlink|move|copy] [--reds4 datasets/REDS4]

1. val_sharp/000-029 (and val_sharp_bicubic/X4/...) become train_sharp/240-269 (and train_sharp_bicubic/X4/...),
   as BasicSR's regroup_reds_dataset does; `--mode symlink` (default) leaves the download untouched.
2. REDS4 (clips 000, 011, 015, 020) as the test layout the option files read: <reds4>/GT/<clip> and
   <reds4>/sharp_bicubic/<clip>, symlinked to the train clips.
3. meta_info_REDS_train.txt (all clips but REDS4), meta_info_REDS4_val.txt and meta_info_REDSofficial_val.txt in
   --root, with each clip's real frame count and shape.
Rerunning is safe: links already in place are kept; anything else in the way is an error that names it.
Then: python tools/create_lmdb.py reds --root datasets/REDS
"""
import argparse
import sys
from os import path as osp

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from basicsr_multigrid.data.lmdb_builder import LmdbBuildError  # noqa: E402
from basicsr_multigrid.data.reds_layout import make_reds4, regroup_val, write_meta_files  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('--root', required=True, help='REDS root (train_sharp, train_sharp_bicubic/X4, val_sharp ...)')
    parser.add_argument('--mode', default='symlink', choices=('symlink', 'move', 'copy'))
    parser.add_argument('--reds4', help='REDS4 test folder (default: REDS4 next to --root)')
    args = parser.parse_args(argv)
    reds4_root = args.reds4 or osp.join(osp.dirname(osp.abspath(args.root)), 'REDS4')
    try:
        moved = regroup_val(args.root, args.mode)
        make_reds4(args.root, reds4_root)
        written = write_meta_files(args.root)
    except LmdbBuildError as error:
        print(f'prepare_reds: error: {error}', file=sys.stderr)
        return 2
    print(f'{args.root}: {moved} val clip folders regrouped ({args.mode}); REDS4 at {reds4_root}')
    for file, count in written.items():
        print(f'  {file}: {count} clips')
    return 0


if __name__ == '__main__':
    sys.exit(main())
