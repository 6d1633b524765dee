"""Real multigrid training runs through BasicSR's pipeline on the demo data: every phase is visited at the
scheduled shape (as the network received it), a resume at a phase boundary continues the same sequence, and
bad multigrid options stop the run before any folder is created."""
import json
import os
import re
import subprocess
import sys
from os import path as osp

from basicsr_multigrid.multigrid.schedule import MultigridSchedule
from tests.conftest import REPO_ROOT, demo_options, run_training, write_options

MULTIGRID_DEMO = osp.join(REPO_ROOT, 'options', 'train', 'demo', 'train_BasicVSR_multigrid_demo.yml')
STEP_LINE = re.compile(r'iter:\s*(\d+), lr:\(([^,]*),.*phase: (\d+) stage: (\d+) lq_size: (\d+) num_frame: (\d+) '
                       r'batch: (\d+)')


def tiny_multigrid_options(demo_data, name, **overrides):
    settings = dict(name=name, network_g__num_feat=8, network_g__num_block=1, datasets__train__num_frame=6,
                    datasets__train__gt_size=64, datasets__train__batch_size_per_gpu=2,
                    datasets__train__num_worker_per_gpu=2, train__total_iter=12, train__scheduler__periods=[12],
                    train__multigrid__spatial_sizes=[8, 16], train__hooks=[{'type': 'LinearWarmupHook',
                                                                             'warmup_iter': 4}],
                    # the paper's phase structure (T/2, 3T/4, T in equal stages), not the demo's tuned one
                    train__multigrid__temporal_fractions=[0.5, 0.75, 1.0], train__multigrid__stage_split='equal',
                    train__multigrid__stage_lr_factors=[1, 1],
                    val__val_freq=100, logger__print_freq=1, logger__save_checkpoint_freq=6)
    settings.update(overrides)
    return demo_options(demo_data, base=MULTIGRID_DEMO, **settings)


def steps(stdout):
    """{iter: (lr, phase, stage, lq_size, num_frame, batch)} as logged from the batch the network received."""
    return {int(m[0]): (m[1],) + tuple(int(v) for v in m[2:]) for m in STEP_LINE.findall(stdout)}


def test_multigrid_run_visits_every_phase_at_the_scheduled_shape(demo_data, tmp_path):
    opt = tiny_multigrid_options(demo_data, 'visits')
    schedule = MultigridSchedule.from_options(opt)
    logged = steps(run_training(tmp_path, write_options(opt, tmp_path)).stdout)
    assert sorted(logged) == list(range(1, 13))
    for current_iter, (_, phase, stage, lq_size, num_frame, batch) in logged.items():
        expected = schedule.phase_at(current_iter - 1)
        assert (phase, stage, lq_size, num_frame, batch) == (expected.index, expected.stage, expected.lq_size,
                                                             expected.num_frame, expected.batch_size_per_gpu)
    assert [(p.lq_size, p.num_frame) for p in schedule.phases] == [(8, 3), (8, 4), (8, 6), (16, 3), (16, 4), (16, 6)]
    assert {v[1] for v in logged.values()} == set(range(6))
    with open(tmp_path / 'experiments' / 'visits' / 'phase_timing.json') as f:
        timing = json.load(f)
    assert [(t['lq_size'], t['num_frame'], t['iters']) for t in timing] == \
        [(p.lq_size, p.num_frame, p.num_iters) for p in schedule.phases]
    assert all(t['s_per_iter'] > 0 and 0 <= t['data_share'] < 1 for t in timing)


def test_resume_at_a_phase_boundary_continues_the_same_shapes_and_lrs(demo_data, tmp_path):
    opt = tiny_multigrid_options(demo_data, 'resume_mg')
    boundary = next(p.start_iter for p in MultigridSchedule.from_options(opt).phases if p.stage == 1)
    opt['logger']['save_checkpoint_freq'] = boundary  # a checkpoint exactly where space grows
    opt_path = write_options(opt, tmp_path)
    uninterrupted = steps(run_training(tmp_path, opt_path).stdout)
    states = tmp_path / 'experiments' / 'resume_mg' / 'training_states'
    for name in os.listdir(states):
        if name != f'{boundary}.state':
            os.remove(states / name)
    resumed = steps(run_training(tmp_path, opt_path, '--auto_resume').stdout)
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
    finally:
        import shutil
        shutil.rmtree(osp.join(REPO_ROOT, 'experiments', name), ignore_errors=True)
