"""Raise the frame rate of a video (or a folder of frames) with a trained frame-interpolation network.

Usage: `python tools/interpolate_video.py --help`. The tool is basicsr_multigrid/inference/interpolate_video.py
(its docstring is the help text); this file puts the repository on the path and runs it.
"""
import sys
from os import path as osp

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from basicsr_multigrid.inference.interpolate_video import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
