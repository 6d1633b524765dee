"""Multiply-accumulates of the warping ops, which conv / linear counters (mmengine's) do not see.

Inside `counting_op_macs()` every call of AdaCoF, softmax splatting and correlation adds its count to the
returned tally (the ops run eagerly meanwhile, see `ops/fused.py`). Counts, per image of the batch:
* AdaCoF: H * W * F^2 * (4 C + 4): four bilinear corners per tap and channel, with the tap weight folded into
  the four corner weights (4 per tap and pixel, shared by the channels);
* splatting: H * W * 4 C': every source value added to four targets with its bilinear weight (C' = C + 1 for
  the normaliser of softmax / linear / average splatting);
* correlation: H' * W' * D^2 * C: one dot product over the channels per displacement.
"""
import collections
import contextlib

_tally = None


@contextlib.contextmanager
def counting_op_macs():
    """Count the ops' multiply-accumulates while inside; yields a Counter {op name: MACs}."""
    global _tally
    previous, _tally = _tally, collections.Counter()
    try:
        yield _tally
    finally:
        _tally = previous


def counting():
    return _tally is not None


def record(op, macs):
    if _tally is not None:
        _tally[op] += int(macs)
