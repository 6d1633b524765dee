"""The divergence guard of the training step: a step whose loss or gradient norm is not finite changes nothing
(no weight, optimizer-state or EMA update), is counted (`skipped_steps` in the log) and warned about; after
`train.max_bad_steps` such steps in a row the run stops with one line naming the iteration and the loss term.

The loss is checked before backward: a non-finite loss reaching backward can crash the process (a BasicVSR step
with LR 1e30 segfaults in grid_sample's backward once its flow is NaN). Under DDP the ranks agree on skipping (one
all-reduce of a flag), so that no rank waits in a backward the others skipped. With fp16 the GradScaler's own
skipping of overflowed steps is loss scaling at work, not divergence, and is not counted.
"""
import torch
import torch.distributed as dist
from basicsr.utils import get_root_logger

from basicsr_multigrid.utils.errors import OptionError, TrainingStopped

DEFAULT_MAX_BAD_STEPS = 10


def max_bad_steps(opt):
    value = (opt.get('train') or {}).get('max_bad_steps', DEFAULT_MAX_BAD_STEPS)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(f'train.max_bad_steps: must be a positive integer, got {value!r}')
    return value


class DivergenceGuard:
    """Counts non-finite steps; raises TrainingStopped after `limit` in a row."""

    def __init__(self, limit):
        self.limit = limit
        self.skipped_steps = 0  # over the whole run (this process)
        self.in_a_row = 0

    def first_non_finite_loss(self, loss_dict):
        """The name of the first non-finite loss term (the ranks agreeing under DDP), or None."""
        culprit = next((name for name, value in loss_dict.items() if not torch.isfinite(value).all()), None)
        return _agree(culprit, 'a loss term on another rank')

    def non_finite_gradients(self, parameters):
        """'gradient norm' if the gradients (already all-reduced under DDP) have a non-finite norm, else None."""
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads or torch.isfinite(torch.nn.utils.get_total_norm(grads)):
            return None
        return 'gradient norm'

    def record(self, culprit, current_iter, value=None):
        """After a step: reset the streak if it was finite, else count it, warn, and stop at the limit."""
        if culprit is None:
            self.in_a_row = 0
            return
        self.skipped_steps += 1
        self.in_a_row += 1
        shown = f' = {value}' if value is not None else ''
        get_root_logger().warning(f'Iteration {current_iter}: {culprit}{shown} is not finite; update skipped '
                                  f'({self.in_a_row} in a row, {self.skipped_steps} in all)')
        if self.in_a_row >= self.limit:
            raise TrainingStopped(f'train.max_bad_steps: {self.in_a_row} steps in a row with a non-finite value, the '
                                  f'last at iteration {current_iter} ({culprit}{shown}); the weights are those of the '
                                  'last finite step; lower train.optim_g.lr or resume from an earlier checkpoint')


def _agree(culprit, elsewhere):
    """Under DDP, `culprit` if this rank has one, else `elsewhere` if any rank has one, else None."""
    if not (dist.is_available() and dist.is_initialized()):
        return culprit
    flag = torch.tensor([0.0 if culprit is None else 1.0],
                        device='cuda' if dist.get_backend() == 'nccl' else 'cpu')
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return culprit if culprit is not None else (elsewhere if flag.item() else None)
