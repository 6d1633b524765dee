"""Repairs of basicsr 1.4.2 on torch 2.14 / torchvision 0.29 / numpy 2 / py-lmdb 3 / Python >= 3.11, nothing else.

Each fix is one function named after the breakage it repairs (B-numbers from the plugin notes; every number,
including the ones handled elsewhere or not needed, is listed in docs/compat.md). ``apply()`` runs them all, in
the order they need: import-time shims first, then patches on basicsr classes. Every patch records the attribute
it replaced, so tests show the breakage comes back without the fix
(``with unpatched('B6_video_validation_on_cpu'): ...``).
"""
import importlib.util
import sys
import types

from basicsr_multigrid.utils.patching import ORIGINALS, patch, unpatched  # noqa: F401  (tests undo fixes by name)

_APPLIED = False


# ---------------------------------------------------------------- import-time shims (before `import basicsr`)


def fix_b1_functional_tensor():
    """B1: torchvision >= 0.17 removed transforms.functional_tensor, so `import basicsr` fails."""
    name = 'torchvision.transforms.functional_tensor'
    if name in sys.modules or importlib.util.find_spec('torchvision') is None:
        return
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        from torchvision.transforms import functional
        shim = types.ModuleType(name)
        shim.rgb_to_grayscale = functional.rgb_to_grayscale
        sys.modules[name] = shim


def fix_b2_distutils():
    """B2: Python >= 3.12 has no distutils; basicsr.archs.arch_util imports distutils.version.LooseVersion."""
    try:
        import distutils.version  # noqa: F401
        return
    except ImportError:
        pass
    from packaging.version import Version
    distutils = types.ModuleType('distutils')
    version = types.ModuleType('distutils.version')
    version.LooseVersion = lambda v: Version(str(v).split('+')[0])
    distutils.version = version
    sys.modules['distutils'] = distutils
    sys.modules['distutils.version'] = version


def fix_b12_scipy_ndimage_filters():
    """B12: basicsr.metrics.niqe imports scipy.ndimage.filters, deprecated and gone in SciPy 2."""
    try:
        importlib.import_module('scipy.ndimage.filters')
    except ImportError:
        import scipy.ndimage
        sys.modules['scipy.ndimage.filters'] = scipy.ndimage


def fix_b3_local_rank_argv(argv):
    """B3: torch.distributed.launch (torch >= 2) passes --local-rank=N; basicsr's parser knows --local_rank."""
    return [('--local_rank' + arg[len('--local-rank'):]) if arg.startswith('--local-rank') else arg for arg in argv]


# ---------------------------------------------------------------- patches on basicsr


def fix_b6_video_validation_on_cpu():
    """B6: video validation allocates its metric table on 'cuda'. Pre-create it on the model's device."""
    from collections import Counter

    import torch
    from basicsr.models.video_base_model import VideoBaseModel
    from basicsr.models.video_recurrent_model import VideoRecurrentModel

    def wrap(original):

        def dist_validation(self, dataloader, current_iter, tb_logger, save_img):
            if self.opt['val'].get('metrics') is not None and not hasattr(self, 'metric_results'):
                frames_per_folder = Counter(dataloader.dataset.data_info['folder'])
                num_metrics = len(self.opt['val']['metrics'])
                self.metric_results = {
                    folder: torch.zeros(n, num_metrics, dtype=torch.float32, device=self.device)
                    for folder, n in frames_per_folder.items()
                }
            return original(self, dataloader, current_iter, tb_logger, save_img)

        return dist_validation

    for cls in (VideoBaseModel, VideoRecurrentModel):
        patch('B6_video_validation_on_cpu', cls, 'dist_validation', wrap(cls.__dict__['dist_validation']))


def fix_b6b_feed_data_copy():
    """B6b: on CPU `.to(device)` aliases the caller's tensor; recurrent validation then squeezes self.lq to 4-D."""
    from basicsr.models.video_base_model import VideoBaseModel

    def feed_data(self, data):
        self.lq = data['lq'].to(self.device, copy=True)
        if 'gt' in data:
            self.gt = data['gt'].to(self.device, copy=True)

    patch('B6b_feed_data_copy', VideoBaseModel, 'feed_data', feed_data)


def fix_b8_distributed_on_cpu():
    """B8: init_dist hard-codes nccl and RANK % GPU count (ZeroDivisionError without GPUs), and model_to_device
    wraps DDP with a CUDA device id. Gloo on CPU, LOCAL_RANK on GPUs, backend from dist_params."""
    import basicsr.utils.options
    import torch
    from basicsr.models.base_model import BaseModel
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    from basicsr_multigrid.utils.distributed import init_dist_from_argv

    def model_to_device(self, net):
        net = net.to(self.device)
        if self.opt['dist']:
            device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
            return DistributedDataParallel(net, device_ids=device_ids,
                                           find_unused_parameters=self.opt.get('find_unused_parameters', False))
        if self.opt['num_gpu'] > 1:
            return DataParallel(net)
        return net

    patch('B8_distributed_on_cpu', basicsr.utils.options, 'init_dist', init_dist_from_argv)
    patch('B8_distributed_on_cpu', BaseModel, 'model_to_device', model_to_device)


def fix_b9_basicvsrpp_alignment_on_cpu():
    """B9: BasicVSR++ builds its deformable alignment only when CUDA is available, though it runs on CPU."""
    from basicsr.archs import basicvsrpp_arch
    cls = basicvsrpp_arch.BasicVSRPlusPlus
    original_init = cls.__dict__['__init__']

    def __init__(self, *args, **kwargs):
        real_is_available = basicvsrpp_arch.torch.cuda.is_available
        basicvsrpp_arch.torch.cuda.is_available = lambda: True  # only consulted to gate deform_align
        try:
            original_init(self, *args, **kwargs)
        finally:
            basicvsrpp_arch.torch.cuda.is_available = real_is_available

    patch('B9_basicvsrpp_alignment_on_cpu', cls, '__init__', __init__)


def fix_b11_lmdb_second_open():
    """B11: every basicsr dataset opens its own lmdb env; py-lmdb 3 rejects the second one in a process."""
    from basicsr.utils.file_client import LmdbBackend

    from basicsr_multigrid.data.lmdb_env import shared_lmdb_env

    def __init__(self, db_paths, client_keys='default', readonly=True, lock=False, readahead=False, **kwargs):
        client_keys = [client_keys] if isinstance(client_keys, str) else list(client_keys)
        self.db_paths = [str(p) for p in (db_paths if isinstance(db_paths, (list, tuple)) else [db_paths])]
        if len(client_keys) != len(self.db_paths):
            raise ValueError(f'io_backend: {len(client_keys)} client_keys for {len(self.db_paths)} db_paths')
        self._client = {
            client: shared_lmdb_env(path, readonly=readonly, lock=lock, readahead=readahead, **kwargs)
            for client, path in zip(client_keys, self.db_paths)
        }

    patch('B11_lmdb_second_open', LmdbBackend, '__init__', __init__)


def apply():
    """Apply every fix once: shims before basicsr is imported, then the class patches."""
    global _APPLIED
    if _APPLIED:
        return
    if 'basicsr' in sys.modules and 'torchvision.transforms.functional_tensor' not in sys.modules:
        raise ImportError('basicsr_multigrid must be imported before basicsr (its compat shims fix basicsr imports)')
    fix_b1_functional_tensor()
    fix_b2_distutils()
    fix_b12_scipy_ndimage_filters()
    fix_b6_video_validation_on_cpu()
    fix_b6b_feed_data_copy()
    fix_b8_distributed_on_cpu()
    fix_b9_basicvsrpp_alignment_on_cpu()
    fix_b11_lmdb_second_open()
    _APPLIED = True


__all__ = ['apply', 'unpatched', 'ORIGINALS', 'fix_b3_local_rank_argv']
