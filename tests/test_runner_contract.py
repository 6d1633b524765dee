"""The runner/model contract (models/runner_contract.py): a stock BasicSR model gets the defaults, this package's
models declare what they offer, and a user's model opts in by declaring a capability, whatever its name or methods;
and the runner's last validation scores only weights that no validation of the run scored yet."""
import copy
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest
from basicsr.models import build_model
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from basicsr_multigrid.models.runner_contract import RunnerContract, contract_of
from basicsr_multigrid.training.preflight import _check_step_options
from basicsr_multigrid.training.runner import TrainingRun
from basicsr_multigrid.utils.errors import OptionError
from tests.conftest import VIDEO_MODEL_OPTIONS, distilled_model

PACKAGE_VIDEO_MODEL = RunnerContract(owns_training_step=True, validates_several_sets=True,
                                     validates_training_weights=True, keeps_lr_scale=True)


def video_model(model_type):
    return build_model(dict(copy.deepcopy(VIDEO_MODEL_OPTIONS), model_type=model_type))


@pytest.mark.parametrize('model_type', ['SRModel', 'VideoRecurrentModel', 'EDVRModel'])
def test_a_stock_basicsr_model_class_gets_the_default_contract(model_type):
    assert contract_of(MODEL_REGISTRY.get(model_type)) == RunnerContract()


def test_a_built_stock_model_gets_the_default_contract_and_a_package_model_the_declared_one(tmp_path):
    assert contract_of(video_model('VideoRecurrentModel')) == RunnerContract()
    assert contract_of(video_model('MultigridVideoRecurrentModel')) == PACKAGE_VIDEO_MODEL
    assert contract_of(distilled_model(tmp_path)) == replace(PACKAGE_VIDEO_MODEL, validates_teacher=True)


def test_the_distillation_factory_declares_what_both_of_its_models_offer():
    shared = RunnerContract(owns_training_step=True, validates_teacher=True, validates_training_weights=True,
                            keeps_lr_scale=True)  # only the video student validates several sets
    assert contract_of(MODEL_REGISTRY.get('KnowledgeDistillationModel')) == shared
    assert contract_of(MODEL_REGISTRY.get('FrameInterpolationModel')) == RunnerContract(
        owns_training_step=True, validates_training_weights=True, keeps_lr_scale=True)


class UsersStepModel:
    """A user's model class, no subclass of this package's models."""
    owns_training_step = True


class UsersPlainModel:
    """The same user's model without the declaration."""


def test_preflight_accepts_step_options_for_a_users_model_that_declares_its_own_step(monkeypatch):
    for model_cls in (UsersStepModel, UsersPlainModel):
        monkeypatch.setitem(MODEL_REGISTRY._obj_map, model_cls.__name__, model_cls)
    opt = {'num_gpu': 0, 'train': {'max_bad_steps': 5}}
    _check_step_options(dict(opt, model_type='UsersStepModel'))
    with pytest.raises(OptionError, match="^train.max_bad_steps: model_type UsersPlainModel trains in BasicSR's own"):
        _check_step_options(dict(opt, model_type='UsersPlainModel'))


class StandInModel:
    """The least of BasicSR's model API the runner calls outside its loop; notes each validation it runs."""
    optimizers, schedulers = [], []

    def __init__(self):
        self.opt = {'val': {'metrics': None}}
        self.validated = []

    def validation(self, dataloader, current_iter, tb_logger, save_img):
        self.validated.append((dataloader.dataset.opt['name'], current_iter))

    def save(self, epoch, current_iter):
        pass


class UsersTeacherModel(StandInModel):
    validates_teacher = True

    def validate_teacher(self, dataloader, current_iter, tb_logger):
        self.validated.append((f"{dataloader.dataset.opt['name']}_teacher", current_iter))
        return True


class UndeclaredTeacherModel(UsersTeacherModel):
    """Has `validate_teacher` but does not declare it."""
    validates_teacher = False


def stand_in_run(model, tmp_path, start_iter=0, total_iter=4):
    """A runner around `model` with one validation set, `val_set`, as its loop leaves it after `start_iter`."""
    opt = {'name': 'stand_in', 'rank': 0, 'path': {'experiments_root': str(tmp_path)}, 'datasets': {'train': {}},
           'train': {'total_iter': total_iter}, 'val': {'val_freq': 2}}
    val_loader = SimpleNamespace(dataset=SimpleNamespace(opt={'name': 'val_set'}))
    run = TrainingRun(opt, model, None, [], None, [val_loader], get_root_logger(), start_iter=start_iter)
    run.loop_start = time.perf_counter()  # set by `train`, whose loop these tests stand in for
    return run


@pytest.mark.parametrize('model_cls, validated', [
    (UsersTeacherModel, [('val_set_teacher', 2), ('val_set', 2)]),
    (UndeclaredTeacherModel, [('val_set', 2)]),
])
def test_the_runner_validates_a_teacher_when_the_model_declares_it_not_when_it_has_one(model_cls, validated, tmp_path):
    run = stand_in_run(model_cls(), tmp_path, start_iter=2)
    run.validate()
    assert run.model.validated == validated


@pytest.mark.parametrize('validated_at, start_iter, validations', [
    ([4], 0, [4]),  # the periodic validation of the last iteration scored the final weights
    ([2], 0, [2, 4]),  # the last iteration was not validated
    ([], 4, [4]),  # resumed at total_iter: this run has validated nothing
])
def test_the_final_validation_runs_unless_this_run_validated_the_last_iteration(validated_at, start_iter,
                                                                                validations, tmp_path):
    run = stand_in_run(StandInModel(), tmp_path, start_iter=start_iter)
    for current_iter in validated_at:
        run.current_iter = current_iter
        run.validate()
    run.current_iter = 4
    run.finish()
    assert [current_iter for _, current_iter in run.model.validated] == validations
