"""`train.on_divergence: rollback`: when a run has diverged (`train.max_bad_steps` non-finite steps in a row), the
runner reloads the newest complete checkpoint (weights, EMA, optimizer, scheduler and RNG states), goes back to its
iteration with the same data and shapes as before, and continues with the LR x `train.rollback_lr_factor`; at most
`train.max_rollbacks` times per process, then the run stops as without rollback. The lowered LR scale is saved in
later training states (`lr_scale`), so a resumed run keeps it.
"""
from os import path as osp

from basicsr_multigrid.models.divergence import Diverged, divergence_action
from basicsr_multigrid.utils.checkpoint import latest_training_state, load_checkpoint


class Rollback:
    """The rollbacks of one run and the LR scale they left."""

    def __init__(self, opt, lr_scale=1.0):
        self.action, self.factor, self.max_rollbacks = divergence_action(opt)
        self.lr_scale = lr_scale
        self.count = 0

    def checkpoint_for(self, error, experiment_root, device):
        """The newest complete training state to go back to (loaded), or `error` again when the run must stop."""
        if self.action != 'rollback':
            raise error
        if self.count >= self.max_rollbacks:
            raise Diverged(f'{error} (after {self.count} rollbacks, train.max_rollbacks)') from error
        path = latest_training_state(experiment_root)
        if path is None:
            raise Diverged(f'{error} (no checkpoint to roll back to yet)') from error
        self.count += 1
        self.lr_scale *= self.factor
        return path, load_checkpoint(path, map_location=device)


def load_checkpoint_weights(model, state_path, iteration):
    """The weights saved with training state `state_path`: net_g (and its EMA when the model keeps one). Only a
    model that owns its training step diverges, so it has `ema_decay` (models/runner_contract.py)."""
    experiment_root = osp.dirname(osp.dirname(state_path))
    weights = osp.join(experiment_root, 'models', f'net_g_{iteration}.pth')
    model.load_network(model.net_g, weights, strict=True, param_key='params')
    if model.ema_decay > 0:
        model.load_network(model.net_g_ema, weights, strict=True, param_key='params_ema')
