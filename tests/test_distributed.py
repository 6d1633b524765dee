"""DDP through BasicSR's launchers on CPU (gloo): torchrun and slurm variables, rank-consistent multigrid shapes,
world-size LR scaling, rank-0-only outputs, validation split across ranks, and resume."""
import os
import re
import subprocess
import sys
from os import path as osp

import pytest
import torch

from basicsr_multigrid import compat
from basicsr_multigrid.hooks.rank_consistency_hook import first_disagreement, weight_checksums
from basicsr_multigrid.multigrid.schedule import MultigridSchedule
from basicsr_multigrid.utils import distributed
from basicsr_multigrid.utils.errors import OptionError
from tests.conftest import (REPO_ROOT, free_port, rank_environment, recorded, steps, tiny_multigrid_options,
                            write_options, write_rank_driver)

BASE_LR = 1e-3


def ddp_options(demo_data, name, total_iter=24, **overrides):
    """Constant LR, so the logged LR shows the world-size scaling alone: batch 2/rank x 2 ranks vs reference 2."""
    settings = dict(train__total_iter=total_iter, train__scheduler={'type': 'MultiStepRestartLR', 'milestones': [10**6],
                                                                    'gamma': 0.5},
                    train__optim_g__lr=BASE_LR, datasets__train__num_worker_per_gpu=1,
                    train__hooks=[{'type': 'LinearScalingLRHook', 'reference_batch': 2},
                                  {'type': 'RankConsistencyHook'}],
                    val__val_freq=total_iter, logger__save_checkpoint_freq=total_iter // 2)
    settings.update(overrides)
    return tiny_multigrid_options(demo_data, name, **settings)


def torchrun(root, opt_path, *extra):
    driver = write_rank_driver(root)
    command = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={free_port()}',
               driver, str(root), '-opt', opt_path, '--launcher', 'pytorch', *extra]
    result = subprocess.run(command, cwd=REPO_ROOT, env=rank_environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:]
    return result.stdout


@pytest.mark.slow
def test_two_gloo_ranks_train_identical_shapes_and_weights_then_resume(demo_data, tmp_path):
    opt = ddp_options(demo_data, 'ddp')
    opt_path = write_options(opt, tmp_path)
    schedule = MultigridSchedule.from_options(opt)
    first = torchrun(tmp_path, opt_path)

    assert re.search(r'RankConsistencyHook: 2 ranks trained on identical batch shapes at 24 checked iterations '
                     r'and end with identical weights', first)
    logged = steps(recorded(tmp_path, 'ddp').iterations)
    assert sorted(logged) == list(range(1, 25))
    for current_iter, (lr, phase, _, lq_size, num_frame, batch) in logged.items():
        expected = schedule.phase_at(current_iter - 1)
        assert (phase, lq_size, num_frame, batch) == (expected.index, expected.lq_size, expected.num_frame, 2)
        assert float(lr) == pytest.approx(2 * BASE_LR)  # global batch 4 against reference 2

    experiments = os.listdir(tmp_path / 'experiments')
    assert experiments == ['ddp']  # rank 1 neither made nor archived a folder
    experiment = str(tmp_path / 'experiments' / 'ddp')
    assert sorted(os.listdir(osp.join(experiment, 'training_states'))) == ['12.state', '24.state']
    metrics = recorded(tmp_path, 'ddp').validations
    assert [m['iter'] for m in metrics] == [24]  # validated at 24, not again at the end; rank 0 only
    assert metrics[0]['psnr'] > 24  # both val clips measured: a clip lost in the gather would halve the mean

    final = torch.load(osp.join(experiment, 'models', 'net_g_24.pth'), map_location='cpu', weights_only=True)
    for name in ('24.state',):
        os.remove(osp.join(experiment, 'training_states', name))
    os.remove(osp.join(experiment, 'models', 'net_g_24.pth'))

    resumed = torchrun(tmp_path, opt_path, '--auto_resume')
    assert 'Resuming training from epoch' in resumed
    # resuming dropped the first run's records after iteration 12: what is there now, the resumed run wrote
    resumed_steps = steps(r for r in recorded(tmp_path, 'ddp').iterations if r['iter'] > 12)
    assert sorted(resumed_steps) == list(range(13, 25))
    assert all(resumed_steps[i] == logged[i] for i in resumed_steps)  # same LR and shapes after the resume
    again = torch.load(osp.join(experiment, 'models', 'net_g_24.pth'), map_location='cpu', weights_only=True)
    for key, value in final['params'].items():
        torch.testing.assert_close(again['params'][key], value, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_slurm_launcher_from_hand_set_variables(demo_data, tmp_path):
    port = free_port()
    opt = ddp_options(demo_data, 'slurm', total_iter=6, dist_params={'backend': 'gloo', 'port': port})
    opt_path = write_options(opt, tmp_path)
    driver = write_rank_driver(tmp_path)
    ranks = []
    for rank in range(2):
        env = dict(rank_environment(), SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank), SLURM_NTASKS='2',
                   SLURM_NODELIST='localhost')
        env.pop('MASTER_ADDR', None)
        ranks.append(subprocess.Popen([sys.executable, driver, str(tmp_path), '-opt', opt_path, '--launcher', 'slurm'],
                                      cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    outputs = [process.communicate(timeout=600)[0] for process in ranks]
    assert [process.returncode for process in ranks] == [0, 0], outputs[0][-4000:] + outputs[1][-4000:]
    assert 'RankConsistencyHook: 2 ranks trained on identical batch shapes at 6 checked iterations' in outputs[0]


def test_slurm_first_host_and_environment(monkeypatch):
    monkeypatch.setattr(distributed.shutil, 'which', lambda name: None)  # no scontrol here
    assert distributed.first_slurm_host('gpu[03-05,09],cpu1') == 'gpu03'
    assert distributed.first_slurm_host('node7') == 'node7'
    assert distributed.first_slurm_host('a1,b2') == 'a1'
    for name, value in dict(SLURM_PROCID='3', SLURM_NTASKS='8', SLURM_NODELIST='n[1-2]', SLURM_LOCALID='1').items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv('MASTER_ADDR', raising=False)
    monkeypatch.delenv('MASTER_PORT', raising=False)
    distributed.slurm_environment(port=4321)
    assert [os.environ[k] for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')] == \
        ['3', '8', '1', 'n1', '4321']


def test_backend_choice_and_launcher_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert distributed.choose_backend({'num_gpu': 0}) == ('gloo', False)
    assert distributed.choose_backend({'num_gpu': 'auto', 'dist_params': {'backend': 'gloo'}}) == ('gloo', False)
    with pytest.raises(OptionError, match='^dist_params.backend: nccl needs CUDA GPUs; use gloo'):
        distributed.choose_backend({'num_gpu': 0, 'dist_params': {'backend': 'nccl'}})
    with pytest.raises(OptionError, match="^dist_params.backend: 'mpi' is not supported"):
        distributed.choose_backend({'dist_params': {'backend': 'mpi'}})
    monkeypatch.delenv('RANK', raising=False)
    with pytest.raises(OptionError, match='^--launcher: environment variable RANK is not set'):
        distributed.init_distributed('pytorch', {'num_gpu': 0})


def test_rank_disagreement_is_found():
    assert first_disagreement([[2, 5, 3], [2, 5, 3]]) is None
    assert first_disagreement([[2, 5, 3], [2, 5, 3], [2, 7, 3]]) == 2
    net = torch.nn.Linear(3, 2)
    twin = torch.nn.Linear(3, 2)
    twin.load_state_dict(net.state_dict())
    assert torch.equal(weight_checksums(net), weight_checksums(twin))
    with torch.no_grad():
        twin.bias[0] += 1e-7
    assert not torch.equal(weight_checksums(net), weight_checksums(twin))


def test_b8_gloo_process_group_and_ddp_wrapper_on_cpu(tmp_path, monkeypatch):
    """basicsr's init_dist divides by the GPU count and model_to_device asks CUDA for a device."""
    import basicsr.utils.options
    from basicsr.models.base_model import BaseModel
    import torch.distributed as dist
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    for name, value in dict(RANK='0', WORLD_SIZE='1', LOCAL_RANK='0', MASTER_ADDR='127.0.0.1',
                            MASTER_PORT=str(free_port())).items():
        monkeypatch.setenv(name, value)
    opt_path = write_options({'num_gpu': 0}, tmp_path)
    monkeypatch.setattr(sys, 'argv', ['train.py', '-opt', opt_path, '--launcher', 'pytorch'])
    with compat.unpatched('B8_distributed_on_cpu'), pytest.raises(ZeroDivisionError):
        basicsr.utils.options.init_dist('pytorch')
    assert basicsr.utils.options.init_dist('pytorch') == 'gloo'
    try:
        model = BaseModel.__new__(BaseModel)
        model.opt, model.device = {'dist': True, 'num_gpu': 0}, torch.device('cpu')
        wrapped = model.model_to_device(torch.nn.Linear(2, 2))
        assert isinstance(wrapped, torch.nn.parallel.DistributedDataParallel)
        with compat.unpatched('B8_distributed_on_cpu'), pytest.raises((RuntimeError, AssertionError)):
            model.model_to_device(torch.nn.Linear(2, 2))
    finally:
        dist.destroy_process_group()
