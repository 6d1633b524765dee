"""Train the demo model on the embedded demo data and print its validation PSNR next to bicubic's, and write a
bicubic | model | ground truth crop panel of the middle frame of the first validation clip.

    python tools/run_demo.py -opt options/train/demo/train_BasicVSR_multigrid_demo.yml --data datasets/demo

`make demo` runs this after building the data with tools/make_demo_data.py.
"""
import argparse
import sys
from os import path as osp

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import basicsr_multigrid  # noqa: E402,F401  (compat fixes + registration)
from basicsr_multigrid.multigrid.schedule import MultigridSchedule  # noqa: E402
from basicsr_multigrid.training.cli import run_cli  # noqa: E402
from basicsr_multigrid.training.recorder import read_run  # noqa: E402
from basicsr_multigrid.training.runner import train_pipeline  # noqa: E402
from basicsr_multigrid.data.video_folder import bicubic_upscale_psnr  # noqa: E402
from basicsr_multigrid.inference.demo_panel import first_val_clip_panel  # noqa: E402
from basicsr_multigrid.utils.errors import OptionError  # noqa: E402
from basicsr_multigrid.utils.option_file import read_option_file  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', required=True, help='training option YAML')
    parser.add_argument('--data', default='datasets/demo', help='demo data folder (for the bicubic baseline)')
    args = parser.parse_args(argv)
    if not osp.isfile(osp.join(args.data, 'meta_info_val.txt')):
        sys.exit(f'error: no demo data in {args.data}; build it with: python tools/make_demo_data.py --out {args.data}')
    try:
        opt = read_option_file(args.opt)
    except OptionError as error:
        sys.exit(f'error: {error}')

    print(f"Training schedule of {opt['name']}:\n{MultigridSchedule.from_options(opt).format_table()}\n", flush=True)
    bicubic = bicubic_upscale_psnr(args.data, split='val')
    run_cli(lambda root: train_pipeline(root, argv=['train.py', '-opt', args.opt]), REPO_ROOT)
    result = read_run(osp.join(REPO_ROOT, 'experiments', opt['name'])).last_validation()
    print(f"\nValidation on the held-out demo clips after {result['iter']} iterations "
          f"({result['wall_s']:.0f} s of training):")
    print(f"  model   PSNR {result['psnr']:.2f} dB, SSIM {result.get('ssim', float('nan')):.4f}")
    print(f'  bicubic PSNR {bicubic:.2f} dB  ({result["psnr"] - bicubic:+.2f} dB)')
    print(f"  side by side: {first_val_clip_panel(osp.join(REPO_ROOT, 'experiments', opt['name']), args.data)}")


if __name__ == '__main__':
    main()
