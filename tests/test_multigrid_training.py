"""Real multigrid training runs through the runner on the demo data: every phase is visited at the
scheduled shape (as the network received it), a resume at a phase boundary continues the same sequence, and
bad multigrid options stop the run before any folder is created."""
import os
import re
import subprocess
import sys
from os import path as osp

import pytest

from basicsr_multigrid.multigrid.schedule import MultigridSchedule
from tests.conftest import (REPO_ROOT, recorded, resume_from_checkpoint, run_training, steps, tiny_multigrid_options,
                            write_options)


@pytest.mark.slow
def test_multigrid_run_visits_every_phase_at_the_scheduled_shape(demo_data, tmp_path):
    opt = tiny_multigrid_options(demo_data, 'visits')
    schedule = MultigridSchedule.from_options(opt)
    run_training(tmp_path, write_options(opt, tmp_path))
    records = recorded(tmp_path, 'visits')
    logged = steps(records.iterations)
    assert sorted(logged) == list(range(1, 13))
    for current_iter, (_, phase, stage, lq_size, num_frame, batch) in logged.items():
        expected = schedule.phase_at(current_iter - 1)
        assert (phase, stage, lq_size, num_frame, batch) == (expected.index, expected.stage, expected.lq_size,
                                                             expected.num_frame, expected.batch_size_per_gpu)
    assert [(p.lq_size, p.num_frame) for p in schedule.phases] == [(8, 3), (8, 4), (8, 6), (16, 3), (16, 4), (16, 6)]
    assert {v[1] for v in logged.values()} == set(range(6))
    timing = records.phase_timing
    assert [(t['lq_size'], t['num_frame'], t['iters']) for t in timing] == \
        [(p.lq_size, p.num_frame, p.num_iters) for p in schedule.phases]
    assert all(t['s_per_iter'] > 0 and 0 <= t['data_share'] < 1 for t in timing)


@pytest.mark.slow
def test_resume_at_a_phase_boundary_continues_the_same_shapes_and_lrs(demo_data, tmp_path):
    opt = tiny_multigrid_options(demo_data, 'resume_mg')
    boundary = next(p.start_iter for p in MultigridSchedule.from_options(opt).phases if p.stage == 1)
    opt['logger']['save_checkpoint_freq'] = boundary  # a checkpoint exactly where space grows
    opt_path = write_options(opt, tmp_path)
    run_training(tmp_path, opt_path)
    uninterrupted = steps(recorded(tmp_path, 'resume_mg').iterations)
    after = resume_from_checkpoint(tmp_path, 'resume_mg', boundary, opt_path)
    # the first run's records after the checkpoint were dropped when the run resumed, not kept twice
    assert [r['iter'] for r in after] == list(range(1, 13))
    resumed = steps(r for r in after if r['iter'] > boundary)
    assert sorted(resumed) == list(range(boundary + 1, 13))
    assert resumed == {it: uninterrupted[it] for it in resumed}


def test_bad_multigrid_option_stops_before_any_folder_is_created(demo_data, tmp_path):
    opt = tiny_multigrid_options(demo_data, 'bad', train__multigrid__temporal_fractions=[0.5, 0.25])
    opt_path = write_options(opt, tmp_path)
    result = subprocess.run([sys.executable, osp.join(REPO_ROOT, 'basicsr_multigrid', 'train.py'), '-opt', opt_path],
                            cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith('error: train.multigrid.temporal_fractions:')
    assert not osp.exists(osp.join(REPO_ROOT, 'experiments', 'bad'))


@pytest.mark.slow
def test_demo_script_trains_and_prints_psnr_next_to_bicubic(demo_data, tmp_path):
    """`make demo`'s last step, on the test's small demo data and a tiny network."""
    name = f'pytest_demo_{os.getpid()}'
    opt_path = write_options(tiny_multigrid_options(demo_data, name, val__val_freq=12), tmp_path)
    try:
        result = subprocess.run([sys.executable, 'tools/run_demo.py', '-opt', opt_path, '--data', demo_data],
                                cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        assert 'predicted speedup over fixed-shape baseline' in result.stdout  # the schedule, shown first
        assert re.search(r'model   PSNR \d+\.\d\d dB', result.stdout)
        assert re.search(r'bicubic PSNR \d+\.\d\d dB', result.stdout)
        panel = re.search(r'side by side: (\S+compare_\w+\.png) \(frame \d+ of \w+: model \d+\.\d\d dB', result.stdout)
        assert panel and osp.getsize(panel.group(1)) > 0, result.stdout[-2000:]
    finally:
        import shutil
        shutil.rmtree(osp.join(REPO_ROOT, 'experiments', name), ignore_errors=True)


@pytest.mark.slow
def test_val_ema_both_scores_the_ema_under_the_set_name_and_the_training_weights_beside_it(demo_data, tmp_path):
    opt = tiny_multigrid_options(demo_data, 'ema_both', train__ema_decay=0.5, val__ema='both', val__val_freq=12)
    run_training(tmp_path, write_options(opt, tmp_path))
    psnr = {r['dataset']: r['psnr'] for r in recorded(tmp_path, 'ema_both').validations}
    assert set(psnr) == {'demo_val', 'demo_val_net_g'} and psnr['demo_val'] != psnr['demo_val_net_g']


@pytest.mark.slow
def test_sample_budget_run_trains_the_schedule_and_resumes_exactly(demo_data, tmp_path):
    opt = tiny_multigrid_options(demo_data, 'budget', train__total_iter=24, train__scheduler__periods=[24],
                                 train__multigrid__batch_scaling='constant_compute',
                                 train__multigrid__max_batch_size_per_gpu=8, logger__save_checkpoint_freq=100)
    schedule = MultigridSchedule.from_options(opt)
    assert [(p.batch_size_per_gpu, p.num_iters) for p in schedule.phases] == [(8, 1), (8, 1), (8, 1), (4, 2), (3, 3),
                                                                              (2, 4)]
    total = schedule.total_iter
    boundary = schedule.phases[4].start_iter
    opt['logger']['save_checkpoint_freq'] = boundary
    opt_path = write_options(opt, tmp_path)
    run_training(tmp_path, opt_path)
    uninterrupted = steps(recorded(tmp_path, 'budget').iterations)
    assert sorted(uninterrupted) == list(range(1, total + 1))
    for current_iter, (_, phase, stage, lq_size, num_frame, batch) in uninterrupted.items():
        expected = schedule.phase_at(current_iter - 1)
        assert (phase, lq_size, num_frame, batch) == (expected.index, expected.lq_size, expected.num_frame,
                                                      expected.batch_size_per_gpu)
    lrs = [uninterrupted[it][0] for it in sorted(uninterrupted)]
    assert lrs[-1] < 0.05 * max(lrs)  # the cosine period of the options' 24 iterations ends with the run's 12

    after = resume_from_checkpoint(tmp_path, 'budget', boundary, opt_path)
    assert [r['iter'] for r in after] == list(range(1, total + 1))
    resumed = steps(r for r in after if r['iter'] > boundary)
    assert resumed == {it: uninterrupted[it] for it in range(boundary + 1, total + 1)}
