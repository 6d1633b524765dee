"""Each basicsr 1.4.2 fix works, and the breakage it names comes back without it (docs/compat.md lists them all).
The fixes that are not patches of basicsr (B4, B7: the runner's own resume loader and prefetcher choice) are
tested against basicsr's originals."""
import subprocess
import sys
import textwrap
from os import path as osp

import lmdb
import pytest
import torch

import basicsr_multigrid  # noqa: F401  (applies the fixes)
from basicsr_multigrid import compat
from basicsr_multigrid.data.lmdb_env import shared_lmdb_env
from basicsr_multigrid.training.resume import load_resume_state
from basicsr_multigrid.training.runner import make_prefetcher
from tests.conftest import REPO_ROOT, demo_options, write_options


def run_python(code):
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def test_b1_import_basicsr_needs_the_functional_tensor_shim():
    broken = run_python('import basicsr')
    assert broken.returncode != 0 and 'functional_tensor' in broken.stderr
    fixed = run_python('import basicsr_multigrid, basicsr; print("ok")')
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.strip().endswith('ok')


BLOCK_DISTUTILS = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == 'distutils' or name.startswith('distutils.'):
            raise ModuleNotFoundError(f'No module named {name!r} (blocked)')
sys.meta_path.insert(0, Block())
sys.modules.pop('distutils', None)
"""
# scipy.ndimage imports its own filters module, so "removed in SciPy 2" is simulated after scipy.ndimage loads.
BLOCK_NDIMAGE_FILTERS = """
import sys, scipy.ndimage
sys.modules['scipy.ndimage.filters'] = None
"""
# functional_tensor is shimmed by hand so that only the blocked module can break `import basicsr`
SHIM_B1 = """
import types, torchvision.transforms.functional as F
m = types.ModuleType('torchvision.transforms.functional_tensor')
m.rgb_to_grayscale = F.rgb_to_grayscale
sys.modules[m.__name__] = m
"""


@pytest.mark.parametrize('blocker, missing', [(BLOCK_DISTUTILS, 'distutils'),
                                              (BLOCK_NDIMAGE_FILTERS, 'scipy.ndimage.filters')])
def test_b2_b12_basicsr_imports_without_removed_modules(blocker, missing):
    """B2 (no distutils on Python >= 3.12) and B12 (no scipy.ndimage.filters in SciPy 2), simulated."""
    broken = run_python(blocker + SHIM_B1 + 'import basicsr')
    assert broken.returncode != 0 and missing in broken.stderr
    fixed = run_python(blocker + 'import basicsr_multigrid, basicsr; print("ok")')
    assert fixed.returncode == 0, fixed.stderr


def test_b3_local_rank_spelling(tmp_path, demo_data, monkeypatch):
    from basicsr.utils.options import parse_options
    opt_path = write_options(demo_options(demo_data), tmp_path)
    argv = ['train.py', '-opt', opt_path, '--local-rank=0']
    monkeypatch.setattr(sys, 'argv', argv)
    with pytest.raises(SystemExit):
        parse_options(str(tmp_path), is_train=True)
    monkeypatch.setattr(sys, 'argv', compat.fix_b3_local_rank_argv(argv))
    opt, args = parse_options(str(tmp_path), is_train=True)
    assert args.local_rank == 0 and opt['dist'] is False


@pytest.fixture
def saved_state(tmp_path):
    """A real training state as basicsr writes it, under <root>/experiments/<name>/training_states."""
    from basicsr.models.lr_scheduler import CosineAnnealingRestartLR
    net = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    scheduler = CosineAnnealingRestartLR(optimizer, periods=[10])
    state_dir = tmp_path / 'experiments' / 'exp' / 'training_states'
    state_dir.mkdir(parents=True)
    (tmp_path / 'experiments' / 'exp' / 'models').mkdir()
    for it in (5, 10):
        torch.save({'epoch': 0, 'iter': it, 'optimizers': [optimizer.state_dict()],
                    'schedulers': [scheduler.state_dict()]}, state_dir / f'{it}.state')
        torch.save({'params': net.state_dict()}, tmp_path / 'experiments' / 'exp' / 'models' / f'net_g_{it}.pth')
    return {'root_path': str(tmp_path), 'name': 'exp', 'auto_resume': True, 'num_gpu': 0,
            'path': {'resume_state': None}}


def test_b4_cpu_auto_resume_from_another_cwd(saved_state, tmp_path, monkeypatch):
    import basicsr.train
    monkeypatch.chdir(tmp_path.parent)  # auto-resume must not depend on the cwd
    state = load_resume_state(dict(saved_state, path={'resume_state': None}))
    assert state['iter'] == 10
    assert basicsr.train.load_resume_state(dict(saved_state, path={'resume_state': None})) is None  # cwd-relative
    monkeypatch.chdir(tmp_path)
    if not torch.cuda.is_available():
        with pytest.raises((RuntimeError, AssertionError)):
            basicsr.train.load_resume_state(dict(saved_state, path={'resume_state': None}))


def _video_model_and_val_loader(demo_data):
    from basicsr.data import build_dataloader, build_dataset
    from basicsr.models import build_model
    opt = demo_options(demo_data)
    opt.update(is_train=True, dist=False, rank=0, world_size=1, root_path='/nonexistent')
    opt['model_type'] = 'VideoRecurrentModel'
    opt['train'].update(total_iter=1)
    opt['path'].update(experiments_root='/nonexistent', visualization='/nonexistent')
    val_opt = dict(opt['datasets']['val'], phase='val', scale=4)
    loader = build_dataloader(build_dataset(val_opt), val_opt, num_gpu=0, dist=False)
    return build_model(opt), loader


@pytest.mark.parametrize('fix, error', [('B6_video_validation_on_cpu', (RuntimeError, AssertionError)),
                                        ('B6b_feed_data_copy', ValueError)])
def test_b6_b6b_video_validation_on_cpu(demo_data, fix, error):
    model, loader = _video_model_and_val_loader(demo_data)
    model.validation(loader, 1, None, False)
    psnr = model.metric_results
    assert all(t.device.type == 'cpu' and (t[:, 0] > 10).all() for t in psnr.values())
    model, loader = _video_model_and_val_loader(demo_data)
    if fix == 'B6b_feed_data_copy' or not torch.cuda.is_available():
        with compat.unpatched(fix), pytest.raises(error):
            model.validation(loader, 1, None, False)


def test_b7_cuda_prefetch_mode_falls_back_to_cpu():
    from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher
    loader = torch.utils.data.DataLoader(list(range(4)), batch_size=2)
    prefetcher = make_prefetcher(loader, {'num_gpu': 0, 'datasets': {'train': {'prefetch_mode': 'cuda'}}})
    assert isinstance(prefetcher, CPUPrefetcher)
    prefetcher.reset()
    assert prefetcher.next().tolist() == [0, 1]
    if not torch.cuda.is_available():
        with pytest.raises((RuntimeError, AssertionError)):
            CUDAPrefetcher(loader, {'num_gpu': 0, 'device': 'cuda'})


def test_b9_basicvsrpp_keeps_deformable_alignment_on_cpu():
    from basicsr.archs.basicvsrpp_arch import BasicVSRPlusPlus
    net = BasicVSRPlusPlus(mid_channels=8, num_blocks=1)
    assert len(net.deform_align) == 4
    with torch.no_grad():
        out = net(torch.rand(1, 3, 3, 64, 64))
    assert out.shape == (1, 3, 3, 256, 256)
    if not torch.cuda.is_available():
        with compat.unpatched('B9_basicvsrpp_alignment_on_cpu'), pytest.warns(UserWarning):
            assert len(BasicVSRPlusPlus(mid_channels=8, num_blocks=1).deform_align) == 0


def test_b11_two_lmdb_readers_on_one_database(tmp_path):
    from basicsr.utils import FileClient
    db = str(tmp_path / 'x.lmdb')
    with lmdb.open(db, map_size=1 << 20) as env, env.begin(write=True) as txn:
        txn.put(b'a/00000000', b'payload')
    readers = [FileClient('lmdb', db_paths=[db], client_keys=['gt']) for _ in range(2)]
    assert [r.get('a/00000000', 'gt') for r in readers] == [b'payload', b'payload']
    other = str(tmp_path / 'y.lmdb')
    lmdb.open(other, map_size=1 << 20).close()
    with compat.unpatched('B11_lmdb_second_open'):
        first = FileClient('lmdb', db_paths=[other], client_keys=['gt'])  # noqa: F841  (kept open)
        with pytest.raises(lmdb.Error, match='already open'):
            FileClient('lmdb', db_paths=[other], client_keys=['gt'])


def _read_in_forked_worker(db, queue):
    queue.put(bytes(shared_lmdb_env(db).begin().get(b'a/00000000')))


def test_b11_forked_dataloader_worker_reads_a_database_its_parent_opened(tmp_path):
    """Preflight opens the LMDB in the main process; forked DataLoader workers must still be able to read it."""
    import multiprocessing
    db = str(tmp_path / 'x.lmdb')
    with lmdb.open(db, map_size=1 << 20) as env, env.begin(write=True) as txn:
        txn.put(b'a/00000000', b'payload')
    assert shared_lmdb_env(db).begin().get(b'a/00000000') == b'payload'
    context = multiprocessing.get_context('fork')
    queue = context.Queue()
    worker = context.Process(target=_read_in_forked_worker, args=(db, queue))
    worker.start()
    worker.join(60)
    assert worker.exitcode == 0 and queue.get(timeout=5) == b'payload'
    assert shared_lmdb_env(db).begin().get(b'a/00000000') == b'payload'  # the parent's env is untouched


def test_b14_any_torch_optimizer():
    from basicsr.models.base_model import BaseModel
    params = [torch.nn.Parameter(torch.zeros(2))]
    assert isinstance(BaseModel.get_optimizer(None, 'Adamax', params, 1e-3), torch.optim.Adamax)
    with pytest.raises(ValueError, match='train.optim_g.type'):
        BaseModel.get_optimizer(None, 'NoSuchOptimizer', params, 1e-3)
    with compat.unpatched('B14_only_adam'), pytest.raises(NotImplementedError):
        BaseModel.get_optimizer(None, 'Adamax', params, 1e-3)


def test_b17_spynet_runs_below_33px_and_is_unchanged_elsewhere():
    from basicsr.archs.spynet_arch import SpyNet
    torch.manual_seed(0)
    net = SpyNet().eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)).shape == (2, 2, 32, 32)
        assert net(torch.rand(1, 3, 16, 20), torch.rand(1, 3, 16, 20)).shape == (1, 2, 16, 20)
        for h, w in ((33, 33), (64, 64), (45, 70)):
            ref, supp = torch.rand(2, 3, h, w), torch.rand(2, 3, h, w)
            fixed = net(ref, supp)
            with compat.unpatched('B17_spynet_below_33px'):
                assert torch.equal(fixed, net(ref, supp))
        with compat.unpatched('B17_spynet_below_33px'), pytest.raises(RuntimeError, match='greater than 0'):
            net(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))
    # below 17 px the pyramid's finest levels run at the input's own size instead of upscaling to 32 px
    input_sizes = []
    net.basic_module[-1].register_forward_hook(lambda module, args, out: input_sizes.append(args[0].shape[-1]))
    coarsest_calls = []
    net.basic_module[0].register_forward_hook(lambda module, args, out: coarsest_calls.append(1))
    with torch.no_grad():
        net(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))
        assert input_sizes == [16] and not coarsest_calls
        net(torch.rand(1, 3, 20, 20), torch.rand(1, 3, 20, 20))
        assert input_sizes == [16, 32] and coarsest_calls == [1]


def test_b18_basicvsrpp_trains_below_64px_and_is_unchanged_elsewhere():
    from basicsr.archs.basicvsrpp_arch import BasicVSRPlusPlus
    torch.manual_seed(0)
    net = BasicVSRPlusPlus(mid_channels=8, num_blocks=1)
    small = torch.rand(2, 3, 3, 32, 32)
    out = net(small)
    assert out.shape == (2, 3, 3, 128, 128)
    out.mean().backward()  # trains: gradients reach the deformable alignment
    assert net.deform_align['backward_1'].conv_offset[-1].weight.grad.abs().sum() > 0
    large = torch.rand(1, 3, 3, 64, 72)
    with torch.no_grad():
        fixed = net(large)
        with compat.unpatched('B18_basicvsrpp_below_64px'):
            assert torch.equal(fixed, net(large))
            with pytest.raises(AssertionError, match='at least 64'):
                net(small)


def test_every_patch_is_tested_and_in_the_compat_table():
    """compat's repairs, plus the two extensions that live with their owners (B14: optim, B17/B18: archs)."""
    tested = {'B6_video_validation_on_cpu', 'B6b_feed_data_copy', 'B8_distributed_on_cpu',  # B8: test_distributed.py
              'B9_basicvsrpp_alignment_on_cpu', 'B11_lmdb_second_open', 'B14_only_adam', 'B17_spynet_below_33px',
              'B18_basicvsrpp_below_64px'}
    assert set(compat.ORIGINALS) == tested
    with open(osp.join(REPO_ROOT, 'docs', 'compat.md')) as f:
        table = f.read()
    numbers = {name.split('_')[0] for name in tested} | {f'B{i}' for i in range(1, 19)}
    assert all(f'| {number} |' in table for number in numbers), sorted(n for n in numbers if f'| {n} |' not in table)

