"""Side-by-side crop panel of one frame: bicubic | model output(s) | ground truth, with PSNR on each tile.

Usage: `python tools/compare_frames.py --help`. The tool is basicsr_multigrid/inference/compare_frames.py
(its docstring is the help text); this file puts the repository on the path and runs it.
"""
import sys
from os import path as osp

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from basicsr_multigrid.inference.compare_frames import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
