"""Long runs on shared clusters: checkpoint-and-exit on preemption signals (one process and two gloo ranks),
slurm requeue, a rank that dies, checkpoint writes that fail, and rolling back after divergence."""
import logging
import os
import re
import resource
import signal
import subprocess
import sys
from os import path as osp

import pytest
import torch

from basicsr_multigrid.models.generator_step import GeneratorStepMixin
from basicsr_multigrid.training.cli import run_cli
from basicsr_multigrid.training.preemption import PreemptionWatch, requeue_slurm_job, stop_signals
from basicsr_multigrid.training.runner import train_pipeline
from basicsr_multigrid.utils.atomic_io import atomic_torch_save, write_text_atomic
from basicsr_multigrid.utils.checkpoint import latest_training_state
from basicsr_multigrid.utils.distributed import collective_timeout
from basicsr_multigrid.utils.errors import DiskWriteError, OptionError
from tests.conftest import (REPO_ROOT, final_weights, free_port, rank_environment, recorded, steps,
                            tiny_multigrid_options, train_until, write_options, write_rank_driver)

LOGGER = logging.getLogger('test')


def no_periodic_saves(demo_data, name, total_iter=24, **overrides):
    """Checkpoints only at the end (and on a signal): the newest state can only be the signal's."""
    return tiny_multigrid_options(demo_data, name, train__total_iter=total_iter, train__scheduler__periods=[total_iter],
                                  logger__save_checkpoint_freq=1000, **overrides)


def states_of(root, name):
    return sorted(os.listdir(osp.join(root, 'experiments', name, 'training_states')))


def stopped_iteration(log):
    match = re.search(r'stopped: (SIG\w+|a signal on another rank) after iteration (\d+): checkpoint (\S+) written',
                      log)
    assert match, log[-3000:]
    return int(match.group(2)), match.group(3)


def fake_scontrol(folder):
    """An `scontrol` on PATH that records its arguments."""
    script = osp.join(folder, 'scontrol')
    with open(script, 'w') as f:
        f.write(f'#!/bin/sh\necho "$@" >> {folder}/scontrol.calls\n')
    os.chmod(script, 0o755)
    return {'PATH': f'{folder}:{os.environ["PATH"]}', 'SLURM_JOB_ID': '4242'}


# ---------------------------------------------------------------------------------------------------- preemption
def test_stop_signals_option():
    assert stop_signals({'train': {}}) == [signal.SIGTERM, signal.SIGINT, signal.SIGUSR1]
    assert stop_signals({'train': {'stop_signals': ['SIGUSR2']}}) == [signal.SIGUSR2]
    assert stop_signals({'train': {'stop_signals': []}}) == []
    for bad in ('SIGTERM', ['SIGFOO'], ['SIGKILL'], [15]):
        with pytest.raises(OptionError, match='^train.stop_signals: '):
            stop_signals({'train': {'stop_signals': bad}})


def test_a_signal_sets_the_flag_and_a_second_one_reaches_the_previous_handler():
    seen = []
    original = signal.signal(signal.SIGUSR2, lambda signum, frame: seen.append(signum))
    try:
        with PreemptionWatch([signal.SIGUSR2], LOGGER) as watch:
            assert watch.stop_requested() is None
            os.kill(os.getpid(), signal.SIGUSR2)
            assert watch.stop_requested() == 'SIGUSR2' and seen == []  # caught: only the flag
            os.kill(os.getpid(), signal.SIGUSR2)
            assert seen == [signal.SIGUSR2]  # asked twice: the handler from before runs
        assert signal.getsignal(signal.SIGUSR2) is not watch.handle
    finally:
        signal.signal(signal.SIGUSR2, original)


def test_requeue_outside_slurm_and_without_scontrol_only_warns(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv('SLURM_JOB_ID', raising=False)
    requeue_slurm_job(LOGGER)
    monkeypatch.setenv('SLURM_JOB_ID', '7')
    monkeypatch.setenv('PATH', str(tmp_path))
    requeue_slurm_job(LOGGER)
    assert 'SLURM_JOB_ID is not set' in caplog.text and 'scontrol not found; slurm job 7 not requeued' in caplog.text


@pytest.mark.slow
def test_sigterm_to_every_process_mid_phase_checkpoints_that_iteration_requeues_and_resumes_exactly(
        demo_data, tmp_path):
    opt_path = write_options(no_periodic_saves(demo_data, 'preempted'), tmp_path)
    train_until(tmp_path / 'reference', opt_path)
    reference = steps(recorded(tmp_path / 'reference', 'preempted').iterations)

    root = tmp_path / 'interrupted'
    log = train_until(root, opt_path, 'iter:      10,', '--requeue', send=signal.SIGTERM, to_group=True, returncode=4,
                      env=fake_scontrol(str(tmp_path)))  # loader workers get it too, as under slurm
    stopped, state = stopped_iteration(log)
    assert 10 <= stopped < 24
    assert states_of(root, 'preempted') == [f'{stopped}.state']  # that iteration, not a periodic save
    assert state == osp.join(str(root), 'experiments', 'preempted', 'training_states', f'{stopped}.state')
    assert max(steps(recorded(root, 'preempted').iterations)) == stopped  # it finished the iteration it was in
    with open(tmp_path / 'scontrol.calls') as f:
        assert f.read() == 'requeue 4242\n'

    resumed = train_until(root, opt_path, None, '--auto_resume')
    assert f'Resuming training from epoch: 0, iter: {stopped}.' in resumed
    assert steps(recorded(root, 'preempted').iterations) == reference  # same LR and shapes at every iteration
    for key, value in final_weights(tmp_path / 'reference', 'preempted').items():
        torch.testing.assert_close(final_weights(root, 'preempted')[key], value, rtol=0, atol=1e-6)


def launch_ranks(root, opt_path, *extra):
    """Two gloo ranks started by hand (as srun would), so that a test can signal or kill one of them."""
    driver = write_rank_driver(root)
    port = str(free_port())
    processes = []
    for rank in range(2):
        env = dict(rank_environment(), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2', MASTER_ADDR='127.0.0.1',
                   MASTER_PORT=port)
        processes.append(subprocess.Popen([sys.executable, driver, str(root), '-opt', opt_path, '--launcher',
                                           'pytorch', *extra], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True, bufsize=1))
    return processes


def wait_for_line(process, text):
    lines = []
    for line in process.stdout:
        lines.append(line)
        if text in line:
            return ''.join(lines)
    raise AssertionError(f'{text!r} never logged:\n' + ''.join(lines)[-3000:])


@pytest.mark.slow
def test_a_signal_to_one_of_two_ranks_stops_both_at_the_same_iteration(demo_data, tmp_path):
    opt = no_periodic_saves(demo_data, 'ddp_preempted', datasets__train__num_worker_per_gpu=1,
                            dist_params={'backend': 'gloo'})
    rank0, rank1 = launch_ranks(tmp_path, write_options(opt, tmp_path))
    head = wait_for_line(rank0, 'iter:       6,')
    os.kill(rank1.pid, signal.SIGUSR1)  # rank 1 logs nothing; only rank 0 prints iterations
    logs = [head + rank0.communicate(timeout=600)[0], rank1.communicate(timeout=600)[0]]
    assert [rank0.returncode, rank1.returncode] == [4, 4], logs[0][-3000:] + logs[1][-3000:]
    (stopped0, state), (stopped1, _) = stopped_iteration(logs[0]), stopped_iteration(logs[1])
    assert stopped0 == stopped1 and 6 <= stopped0 < 24
    assert 'stopped: a signal on another rank after' in logs[0] and 'stopped: SIGUSR1 after' in logs[1]
    assert states_of(tmp_path, 'ddp_preempted') == [f'{stopped0}.state'] and latest_training_state(
        osp.join(tmp_path, 'experiments', 'ddp_preempted')) == state


# ---------------------------------------------------------------------------------------------------- dead rank
def test_collective_timeout_option():
    assert collective_timeout({}) == 600 and collective_timeout({'dist_params': {'timeout': 30}}) == 30
    for bad in (0, -5, 'ten', True):
        with pytest.raises(OptionError, match='^dist_params.timeout: '):
            collective_timeout({'dist_params': {'timeout': bad}})


@pytest.mark.slow
def test_killing_one_of_two_ranks_stops_the_other_with_a_line_naming_it(demo_data, tmp_path):
    opt = no_periodic_saves(demo_data, 'dead_rank', datasets__train__num_worker_per_gpu=1,
                            dist_params={'backend': 'gloo', 'timeout': 60})
    rank0, rank1 = launch_ranks(tmp_path, write_options(opt, tmp_path))
    head = wait_for_line(rank0, 'iter:       6,')
    rank1.kill()
    rank1.communicate(timeout=60)
    log = head + rank0.communicate(timeout=120)[0]  # well before the 60 s collective timeout plus exit
    assert rank0.returncode == 5, log[-3000:]
    last = log.strip().splitlines()[-1]
    assert re.fullmatch(r'error: rank 1 stopped \(no heartbeat for 6 s\); rank 0 stops at iteration \d+ instead of '
                        r'waiting for it \(.+\)', last), last


# ---------------------------------------------------------------------------------------------------- full disk
def test_a_failed_checkpoint_write_keeps_the_old_file_and_says_where_and_how_much_space(tmp_path, monkeypatch):
    path = str(tmp_path / 'net_g_4.pth')
    atomic_torch_save({'params': {'w': torch.ones(2)}}, path)

    def disk_full(obj, f):
        f.write(b'partial')
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(torch, 'save', disk_full)
    with pytest.raises(DiskWriteError) as error:
        atomic_torch_save({'params': {'w': torch.zeros(2)}}, path)
    monkeypatch.undo()
    assert re.fullmatch(rf'{re.escape(path)}: not written \(No space left on device\); [\d.]+ MiB free on '
                        rf'{re.escape(str(tmp_path))}; the previous version of this file, if any, is intact',
                        str(error.value))
    assert torch.equal(torch.load(path, weights_only=True)['params']['w'], torch.ones(2))
    assert os.listdir(tmp_path) == ['net_g_4.pth']


def test_a_failed_record_write_keeps_the_old_file(tmp_path):
    path = str(tmp_path / 'phase_timing.json')
    write_text_atomic(path, ['old'])

    def lines_until_the_quota_runs_out():
        yield 'new'
        raise OSError(122, 'Disk quota exceeded')

    with pytest.raises(DiskWriteError, match='phase_timing.json: not written \\(Disk quota exceeded\\)'):
        write_text_atomic(path, lines_until_the_quota_runs_out())
    assert open(path).read() == 'old' and os.listdir(tmp_path) == ['phase_timing.json']


def limit_file_size(limit):
    """In the child: files larger than `limit` bytes cannot be written (EFBIG, as a full disk gives ENOSPC)."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.slow
def test_a_checkpoint_that_cannot_be_written_stops_the_run_and_leaves_the_previous_one(demo_data, tmp_path):
    opt = tiny_multigrid_options(demo_data, 'full_disk', train__total_iter=8, train__scheduler__periods=[8],
                                 logger__save_checkpoint_freq=4)
    opt_path = write_options(opt, tmp_path)
    train_until(tmp_path, opt_path, 'iter:       5,')  # checkpoint of iteration 4 written, then SIGKILL
    experiment = osp.join(tmp_path, 'experiments', 'full_disk')
    model_size = os.path.getsize(osp.join(experiment, 'models', 'net_g_4.pth'))

    log = train_until(tmp_path, opt_path, None, '--auto_resume', returncode=3,
                      preexec_fn=limit_file_size(model_size // 2))
    model = osp.join(experiment, 'models', 'net_g_8.pth')
    last = log.strip().splitlines()[-1]
    assert re.fullmatch(rf'error: {re.escape(model)}: not written \(File too large\); [\d.]+ MiB free on '
                        rf'{re.escape(osp.dirname(model))}; the previous version of this file, if any, is intact',
                        last), log[-3000:]
    assert sorted(os.listdir(osp.join(experiment, 'models'))) == ['net_g_4.pth']  # nothing half-written
    assert states_of(tmp_path, 'full_disk') == ['4.state']
    assert latest_training_state(experiment) == osp.join(experiment, 'training_states', '4.state')


# ---------------------------------------------------------------------------------------------------- rollback
def nan_losses_at(monkeypatch, calls, seen_weights=None):
    """Make the total loss NaN at these training steps (counted by calls, so a redone iteration is a new call);
    with `seen_weights`, keep a copy of the weights each step starts from."""
    original = GeneratorStepMixin.generator_losses
    count = []

    def losses(self):
        count.append(1)
        if seen_weights is not None:
            state = self.get_bare_model(self.net_g).state_dict()
            seen_weights.append({k: v.detach().clone() for k, v in state.items()})
        total, loss_dict = original(self)
        if len(count) in calls:
            loss_dict = {name: value * float('nan') for name, value in loss_dict.items()}
            total = total * float('nan')
        return total, loss_dict

    monkeypatch.setattr(GeneratorStepMixin, 'generator_losses', losses)


def rollback_options(demo_data, name, **overrides):
    return tiny_multigrid_options(demo_data, name, train__max_bad_steps=2, train__on_divergence='rollback',
                                  logger__save_checkpoint_freq=4, datasets__train__num_worker_per_gpu=0, **overrides)


def test_rollback_goes_back_to_the_newest_checkpoint_and_redoes_it_at_half_the_lr(demo_data, tmp_path, monkeypatch):
    opt = rollback_options(demo_data, 'rolled')
    opt_path = write_options(opt, tmp_path)
    train_pipeline(str(tmp_path / 'reference'), ['train.py', '-opt', opt_path])
    reference = steps(recorded(tmp_path / 'reference', 'rolled').iterations)

    seen = []
    nan_losses_at(monkeypatch, {6, 7}, seen)  # iterations 6 and 7 diverge: back to the checkpoint of iteration 4
    train_pipeline(str(tmp_path / 'rolled'), ['train.py', '-opt', opt_path])
    expected = torch.load(osp.join(tmp_path, 'reference', 'experiments', 'rolled', 'models', 'net_g_4.pth'),
                          weights_only=True)['params']
    for key, value in expected.items():
        assert torch.equal(seen[7][key], value), key  # the 8th step (iteration 5 again) starts from them
    logged = steps(recorded(tmp_path / 'rolled', 'rolled').iterations)
    assert sorted(logged) == list(range(1, 13))  # the records of the abandoned iterations 5-7 were dropped
    for it, (lr, *shape) in logged.items():
        assert lr == pytest.approx(reference[it][0] * (1 if it <= 4 else 0.5), rel=1e-6), it
        assert shape == list(reference[it][1:])  # same phases and shapes at every iteration
    state = torch.load(osp.join(tmp_path, 'rolled', 'experiments', 'rolled', 'training_states', '8.state'),
                       weights_only=True)
    assert state['lr_scale'] == 0.5  # a resumed run keeps the lowered LR


def test_a_run_that_keeps_diverging_stops_after_max_rollbacks(demo_data, tmp_path, monkeypatch, capsys):
    opt = rollback_options(demo_data, 'hopeless', train__max_rollbacks=1)
    nan_losses_at(monkeypatch, set(range(6, 100)))
    with pytest.raises(SystemExit) as stopped:
        run_cli(lambda root: train_pipeline(root, ['train.py', '-opt', write_options(opt, tmp_path)]), str(tmp_path))
    assert stopped.value.code == 3
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.fullmatch(r'error: train.max_bad_steps: 2 steps in a row with a non-finite value, the last at '
                        r'iteration 6 \(l_pix = nan\); .+ \(after 1 rollbacks, train.max_rollbacks\)', message), message
