"""The divergence guard of the training step: a step whose loss or gradient norm is not finite changes nothing
(no weight, optimizer-state or EMA update), is counted (`skipped_steps` in the log) and warned about; after
`train.max_bad_steps` such steps in a row the run stops with one line naming the iteration and the loss term
(`Diverged`), or, with `train.on_divergence: rollback`, the runner reloads the newest checkpoint and goes on with
the LR x `train.rollback_lr_factor` (training/rollback.py), at most `train.max_rollbacks` times.

The loss is checked before backward: a non-finite loss reaching backward can crash the process (a BasicVSR step
with LR 1e30 segfaults in grid_sample's backward once its flow is NaN). Under DDP the ranks agree on skipping (one
all-reduce of a flag), so that no rank waits in a backward the others skipped. With fp16 the GradScaler's own
skipping of overflowed steps is loss scaling at work, not divergence, and is not counted.
"""
import torch
from basicsr.utils import get_root_logger

from basicsr_multigrid.utils.distributed import agree
from basicsr_multigrid.utils.errors import OptionError, TrainingStopped

DEFAULT_MAX_BAD_STEPS = 10
DIVERGENCE_ACTIONS = ('stop', 'rollback')
DEFAULT_ROLLBACK_LR_FACTOR = 0.5
DEFAULT_MAX_ROLLBACKS = 3


class Diverged(TrainingStopped):
    """`train.max_bad_steps` non-finite steps in a row."""


def max_bad_steps(opt):
    value = (opt.get('train') or {}).get('max_bad_steps', DEFAULT_MAX_BAD_STEPS)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(f'train.max_bad_steps: must be a positive integer, got {value!r}')
    return value


def divergence_action(opt):
    """(`train.on_divergence`, `train.rollback_lr_factor`, `train.max_rollbacks`), checked."""
    train = opt.get('train') or {}
    action = train.get('on_divergence', 'stop')
    if action not in DIVERGENCE_ACTIONS:
        raise OptionError(f'train.on_divergence: {action!r} is not one of {", ".join(DIVERGENCE_ACTIONS)}')
    factor = train.get('rollback_lr_factor', DEFAULT_ROLLBACK_LR_FACTOR)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor < 1:
        raise OptionError(f'train.rollback_lr_factor: must be a number between 0 and 1 (exclusive), got {factor!r}')
    rollbacks = train.get('max_rollbacks', DEFAULT_MAX_ROLLBACKS)
    if isinstance(rollbacks, bool) or not isinstance(rollbacks, int) or rollbacks < 1:
        raise OptionError(f'train.max_rollbacks: must be a positive integer, got {rollbacks!r}')
    return action, factor, rollbacks


class DivergenceGuard:
    """Counts non-finite steps; raises TrainingStopped after `limit` in a row."""

    def __init__(self, limit):
        self.limit = limit
        self.skipped_steps = 0  # over the whole run (this process)
        self.in_a_row = 0

    def reset_streak(self):
        self.in_a_row = 0

    def first_non_finite_loss(self, loss_dict):
        """The name of the first non-finite loss term (the ranks agreeing under DDP), or None."""
        culprit = next((name for name, value in loss_dict.items() if not torch.isfinite(value).all()), None)
        return agree(culprit, 'a loss term on another rank')

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
            raise Diverged(f'train.max_bad_steps: {self.in_a_row} steps in a row with a non-finite value, the '
                           f'last at iteration {current_iter} ({culprit}{shown}); the weights are those of the '
                           'last finite step; lower train.optim_g.lr or resume from an earlier checkpoint')
