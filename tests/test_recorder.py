"""The run recorder: the ETA that knows the schedule (checked against hand-computed times), records a resumed run
replaces, and a reader that survives a run killed mid-write."""
import json
import logging

import pytest

from basicsr_multigrid.multigrid.schedule import MultigridSchedule
from basicsr_multigrid.training.recorder import TRAIN_LOG, PhaseTimer, RunRecorder, read_run


def two_stage_schedule():
    """10 iterations at LR 8 (cost 1/4 of the full shape) then 10 at LR 16 (cost 1), one clip length."""
    opt = {'scale': 4, 'train': {'total_iter': 20, 'multigrid': {'spatial_sizes': [8, 16], 'temporal_fractions': [1.0]}},
           'datasets': {'train': {'num_frame': 4, 'gt_size': 64, 'batch_size_per_gpu': 2}}}
    schedule = MultigridSchedule.from_options(opt)
    assert [(p.lq_size, p.num_iters, p.start_iter) for p in schedule.phases] == [(8, 10, 0), (16, 10, 10)]
    assert [schedule.relative_cost(p) for p in schedule.phases] == [0.25, 1.0]
    return schedule


def test_remaining_time_uses_the_cost_model_until_a_phase_is_measured():
    timer = PhaseTimer(two_stage_schedule())
    assert timer.remaining_seconds(0) is None
    for iteration in range(4):  # 0.1 s per iteration at cost 0.25: 0.4 s per unit of cost
        timer.add(iteration, data_s=0.02, compute_s=0.08)
    assert timer.remaining_seconds(4) == pytest.approx(6 * 0.1 + 10 * 0.4)
    for iteration in range(4, 12):  # phase 0 at 0.1 s, then phase 1 measured at 0.5 s (not the predicted 0.4)
        timer.add(iteration, data_s=0.0, compute_s=0.1 if iteration < 10 else 0.5)
    assert timer.remaining_seconds(12) == pytest.approx(8 * 0.5)


def recorder(tmp_path, start_iter=0):
    opt = {'name': 'rec', 'path': {'experiments_root': str(tmp_path)}, 'train': {'total_iter': 20}}
    return RunRecorder(opt, two_stage_schedule(), logging.getLogger('test_recorder'), start_iter=start_iter)


def test_console_eta_adds_the_wall_time_steps_do_not_account_for(tmp_path, monkeypatch):
    rec = recorder(tmp_path)
    for iteration in range(10):
        rec.timer.add(iteration, data_s=0.0, compute_s=0.1)  # 1 s of steps ...
    monkeypatch.setattr(rec, '_elapsed', lambda: 2.0)  # ... in 2 s of wall time (validation, checkpoints)
    assert rec.eta_seconds(10) == pytest.approx(10 * 0.4 * 2.0)


def test_resumed_run_replaces_the_records_of_the_iterations_it_trains_again(tmp_path):
    with open(tmp_path / TRAIN_LOG, 'w') as f:
        f.writelines(json.dumps({'iter': i, 'lr': 1.0}) + '\n' for i in range(1, 9))
        f.write('{"iter": 9, "l')  # killed while writing
    assert [r['iter'] for r in read_run(str(tmp_path)).iterations] == list(range(1, 9))
    recorder(tmp_path, start_iter=6)
    assert [r['iter'] for r in read_run(str(tmp_path)).iterations] == list(range(1, 7))


def test_steps_that_compiled_are_timed_apart_from_their_phase():
    schedule = two_stage_schedule()
    timer = PhaseTimer(schedule)
    first = schedule.phases[0]
    timer.add(first.start_iter, 0.1, 30.0, compile_s=30.1)
    for iteration in range(first.start_iter + 1, first.start_iter + 3):
        timer.add(iteration, 0.1, 0.9)
    record = timer.report()[0]
    assert record['iters'] == 2 and record['s_per_iter'] == pytest.approx(1.0)
    assert record['compiled_steps'] == 1 and record['compile_s'] == pytest.approx(30.1)
    assert timer.measured_seconds() == pytest.approx(2.0)
