"""Which weights validation scores when a run keeps an exponential moving average of them (`train.ema_decay > 0`),
set by `val.ema`:

- `true` (the default): the EMA weights, which are what the run saves as `params_ema` and what users ship;
- `both`: the EMA weights under the set's name and the training weights under `<name>_net_g`;
- `false`: the training weights only.

Without an EMA the training weights are scored. (BasicSR 1.4.2's SRModel scores the EMA, its VideoRecurrentModel
the training weights; one rule for every model of this package.)
"""
from basicsr_multigrid.models.validation_sets import RenamedLoader
from basicsr_multigrid.utils.errors import OptionError

EMA_MODES = (True, False, 'both')
TRAINING_WEIGHTS_SUFFIX = '_net_g'


def ema_validation_mode(opt):
    """`val.ema` checked against the run's EMA: True, False or 'both'. OptionError naming the key."""
    val_opt = opt.get('val') or {}
    mode = val_opt.get('ema', True)
    if mode not in EMA_MODES or isinstance(mode, int) and not isinstance(mode, bool):
        raise OptionError(f'val.ema: {mode!r} is not one of true, false, both')
    has_ema = (opt.get('train') or {}).get('ema_decay', 0) > 0
    if 'ema' in val_opt and mode is not False and not has_ema:
        raise OptionError(f'val.ema: {str(mode).lower()} needs an EMA to score; set train.ema_decay > 0')
    return mode if has_ema else False


class EmaValidationMixin:
    """Put before a BasicSR model class: `test()` runs the network `val.ema` chooses."""

    validates_training_weights = True  # runner contract (models/runner_contract.py)
    scoring_training_weights = False  # set while validate_training_weights runs

    def test(self):
        ema = getattr(self, 'net_g_ema', None)
        use_ema = ema is not None and ema_validation_mode(self.opt) is not False and not self.scoring_training_weights
        trained = self.net_g
        if ema is not None:
            del self.net_g_ema  # SRModel.test would otherwise pick the EMA by itself
        self.net_g = ema if use_ema else trained
        try:
            super().test()
        finally:
            self.net_g = trained
            if ema is not None:
                self.net_g_ema = ema.eval()  # base tests put the network they ran back in train mode

    def validate_training_weights(self, dataloader, current_iter, tb_logger):
        """With `val.ema: both`, score the training weights on `dataloader` as `<name>_net_g`; returns whether
        it did."""
        if getattr(self, 'net_g_ema', None) is None or ema_validation_mode(self.opt) != 'both':
            return False
        self.scoring_training_weights = True
        try:
            name = dataloader.dataset.opt['name'] + TRAINING_WEIGHTS_SUFFIX
            self.validation(RenamedLoader(dataloader, name), current_iter, tb_logger, save_img=False)
        finally:
            self.scoring_training_weights = False
        return True
