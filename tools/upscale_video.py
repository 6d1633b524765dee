"""Upscale a video (or a folder of frames) with a trained VSR network of the registry.

Usage: `python tools/upscale_video.py --help`. The tool is basicsr_multigrid/inference/upscale_video.py
(its docstring is the help text); this file puts the repository on the path and runs it.
"""
import sys
from os import path as osp

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from basicsr_multigrid.inference.upscale_video import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
