"""What a model may offer the training runner (training/runner.py) beyond BasicSR's model API, in one place.

The runner drives every model through basicsr 1.4.2's `BaseModel` API (`feed_data`, `optimize_parameters`,
`update_learning_rate`, `get_current_log`, `validation`, `save`, `resume_training`), so stock BasicSR models and
users' own subclasses train unchanged and need nothing from this module. A model class offers more by declaring
capabilities, class attributes that are False unless declared:

- `owns_training_step`: its `optimize_parameters` applies `train.precision`, `channels_last`, `compile` and the
  divergence guard (`max_bad_steps`, `on_divergence`), so preflight accepts those options; it has what
  `OwnTrainingStep` lists (GeneratorStepMixin gives all of it);
- `validates_several_sets`: its validation keeps each validation set apart (BasicSR warns that only SRModel does);
- `validates_teacher`: it has `validate_teacher` (`TeacherValidation`), called once per validation set;
- `validates_training_weights`: it has `validate_training_weights` (`TrainingWeightsValidation`), called after
  each validation of a set;
- `keeps_lr_scale`: its training states save `lr_scale`, the LR factor that rollbacks left (the runner sets it), so
  a resumed run keeps it.

The runner and preflight read capabilities with `contract_of` only, never by class name or by probing for methods,
so a user's model opts in by declaring the capability; a rollback relies on `OwnTrainingStep` (only a model that
owns its training step diverges). A factory function registered as a model declares what every class it may build
offers (`builds_one_of`): preflight reads the contract before any model is built.

Of BasicSR's own model state the runner reads, where present, `lq` / `gt` (kept by `feed_data`) and `metric_results`
(left by `validation`): `network_batch` and `validation_metric_results`.
"""
from dataclasses import dataclass, fields
from typing import Protocol

from basicsr_multigrid.models.compilation import CompileMeter
from basicsr_multigrid.models.divergence import DivergenceGuard


@dataclass(frozen=True)
class RunnerContract:
    """The capabilities a model declares (see the module docstring); a stock BasicSR model gets these defaults."""
    owns_training_step: bool = False
    validates_several_sets: bool = False
    validates_teacher: bool = False
    validates_training_weights: bool = False
    keeps_lr_scale: bool = False


CAPABILITIES = tuple(field.name for field in fields(RunnerContract))


class OwnTrainingStep(Protocol):
    """What a model declaring `owns_training_step` has, besides BasicSR's API."""
    divergence: DivergenceGuard  # its streak of non-finite steps; the runner resets it after a rollback
    compile_meter: CompileMeter | None  # steps that compiled net_g, timed apart; None without train.compile
    ema_decay: float  # > 0 when it keeps `net_g_ema`, which a rollback reloads with `net_g`


class TeacherValidation(Protocol):
    def validate_teacher(self, dataloader, current_iter, tb_logger) -> bool:
        """Score the distillation teacher on `dataloader` as `<name>_teacher`; whether it did (no teacher: no)."""


class TrainingWeightsValidation(Protocol):
    def validate_training_weights(self, dataloader, current_iter, tb_logger) -> bool:
        """Score the training weights next to their EMA as `<name>_net_g`; whether it did (`val.ema: both`)."""


def contract_of(model):
    """The capabilities `model` (a model, its class or a registered factory function) declares."""
    return RunnerContract(**{name: bool(getattr(model, name, False)) for name in CAPABILITIES})


def builds_one_of(*model_classes):
    """Decorator of a model factory function: it declares the capabilities that every class it may build declares."""
    def declare(factory):
        for name in CAPABILITIES:
            setattr(factory, name, all(getattr(contract_of(cls), name) for cls in model_classes))
        return factory
    return declare


def network_batch(model, batch):
    """What the network received this iteration: the `lq` / `gt` that BasicSR's `feed_data` kept on the model (a
    model may change them), else the batch's own."""
    return {key: getattr(model, key, batch.get(key)) for key in ('lq', 'gt') if key in batch}


def validation_metric_results(model):
    """The metric table BasicSR's `validation` left on the model; None before any validation or without metrics."""
    return getattr(model, 'metric_results', None)
