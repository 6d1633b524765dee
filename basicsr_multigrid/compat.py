"""Fixes for basicsr 1.4.2 on torch 2.14 / torchvision 0.29 / numpy 2 / py-lmdb 3 / Python >= 3.11.

Each fix is one function named after the breakage it repairs (B-numbers from
shared/notes/basicsr-1.4.2-plugin-notes.md). ``apply()`` runs them all, in the order they need:
import-time shims first, then patches on basicsr classes. Every patch records the attribute it
replaced in ``ORIGINALS`` so tests can show the breakage comes back without the fix
(``with unpatched('B6_video_validation_on_cpu'): ...``).
"""
import contextlib
import importlib.util
import math
import os
import sys
import types
from os import path as osp

from basicsr_multigrid.utils.errors import OptionError

ORIGINALS = {}  # fix name -> list of (owner, attribute, original value)
_APPLIED = False


def _patch(fix_name, owner, attribute, value):
    ORIGINALS.setdefault(fix_name, []).append((owner, attribute, owner.__dict__.get(attribute)))
    setattr(owner, attribute, value)


@contextlib.contextmanager
def unpatched(fix_name):
    """Temporarily restore basicsr's original attributes replaced by one fix (for tests)."""
    saved = [(owner, attribute, owner.__dict__.get(attribute)) for owner, attribute, _ in ORIGINALS[fix_name]]
    try:
        for owner, attribute, original in ORIGINALS[fix_name]:
            _set_or_delete(owner, attribute, original)
        yield
    finally:
        for owner, attribute, patched in saved:
            _set_or_delete(owner, attribute, patched)


def _set_or_delete(owner, attribute, value):
    if value is None:
        if attribute in owner.__dict__:
            delattr(owner, attribute)
    else:
        setattr(owner, attribute, value)


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


def load_resume_state(opt):
    """B4: basicsr's load_resume_state needs CUDA and looks for auto-resume states relative to the cwd.

    States are mapped to the device the run uses, loaded with weights_only=True, and ``--auto_resume`` takes
    the newest complete checkpoint in ``<root_path>/experiments/<name>/training_states`` (a truncated or corrupt
    newer one is skipped with a warning naming it).
    """
    import torch
    from basicsr.utils import check_resume

    from basicsr_multigrid.utils.checkpoint import load_checkpoint
    resume_state_path = None
    if opt['auto_resume']:
        resume_state_path = latest_training_state(osp.join(opt['root_path'], 'experiments', opt['name']))
        if resume_state_path is not None:
            opt['path']['resume_state'] = resume_state_path
    elif opt['path'].get('resume_state'):
        resume_state_path = opt['path']['resume_state']
    if resume_state_path is None:
        return None
    if not osp.isfile(resume_state_path):
        raise OptionError(f'path.resume_state: no such file {resume_state_path}')
    device = f'cuda:{torch.cuda.current_device()}' if opt.get('num_gpu', 0) and torch.cuda.is_available() else 'cpu'
    resume_state = load_checkpoint(resume_state_path, map_location=device)
    check_resume(opt, resume_state['iter'])
    return resume_state


def latest_training_state(experiment_root):
    """Path of the newest ``<iter>.state`` under ``experiment_root/training_states`` whose state and model files
    are complete, or None. Skipped files are named in a warning."""
    import warnings

    from basicsr_multigrid.utils.checkpoint import readable_checkpoint
    state_dir = osp.join(experiment_root, 'training_states')
    if not osp.isdir(state_dir):
        return None
    iters = sorted((int(name[:-len('.state')]) for name in os.listdir(state_dir)
                    if name.endswith('.state') and name[:-len('.state')].isdigit()), reverse=True)
    for it in iters:
        files = [osp.join(state_dir, f'{it}.state')] + _model_files(experiment_root, it)
        problems = [(file, readable_checkpoint(file)) for file in files]
        bad = [(file, reason) for file, reason in problems if reason]
        if not bad:
            return files[0]
        warnings.warn(f'auto_resume: skipping iteration {it}: {bad[0][0]} is unusable ({bad[0][1]})', stacklevel=2)
    return None


def _model_files(experiment_root, it):
    models = osp.join(experiment_root, 'models')
    names = os.listdir(models) if osp.isdir(models) else []
    files = [osp.join(models, n) for n in sorted(names) if n.endswith(f'_{it}.pth')]
    return files or [osp.join(models, f'net_g_{it}.pth')]


def fix_b4_cpu_resume():
    import basicsr.train
    _patch('B4_cpu_resume', basicsr.train, 'load_resume_state', load_resume_state)


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
        _patch('B6_video_validation_on_cpu', cls, 'dist_validation', wrap(cls.__dict__['dist_validation']))


def fix_b6b_feed_data_copy():
    """B6b: on CPU `.to(device)` aliases the caller's tensor; recurrent validation then squeezes self.lq to 4-D."""
    from basicsr.models.video_base_model import VideoBaseModel

    def feed_data(self, data):
        self.lq = data['lq'].to(self.device, copy=True)
        if 'gt' in data:
            self.gt = data['gt'].to(self.device, copy=True)

    _patch('B6b_feed_data_copy', VideoBaseModel, 'feed_data', feed_data)


def fix_b7_cuda_prefetcher_on_cpu():
    """B7: prefetch_mode 'cuda' crashes without CUDA; fall back to the CPU prefetcher there."""
    import basicsr.train
    import torch
    from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher

    def prefetcher(loader, opt):
        if opt.get('num_gpu', 0) and torch.cuda.is_available():
            return CUDAPrefetcher(loader, opt)
        return CPUPrefetcher(loader)

    _patch('B7_cuda_prefetcher_on_cpu', basicsr.train, 'CUDAPrefetcher', prefetcher)


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

    _patch('B8_distributed_on_cpu', basicsr.utils.options, 'init_dist', init_dist_from_argv)
    _patch('B8_distributed_on_cpu', BaseModel, 'model_to_device', model_to_device)


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

    _patch('B9_basicvsrpp_alignment_on_cpu', cls, '__init__', __init__)


_LMDB_ENVS = {}  # (realpath, readonly, lock, readahead) -> lmdb.Environment of this process


def _close_inherited_lmdb_envs():
    """A forked DataLoader worker inherits the parent's open environments, and py-lmdb 3 then refuses to open
    them again ('already open in this process'); LMDB handles must not be used across fork anyway."""
    for env in _LMDB_ENVS.values():
        env.close()
    _LMDB_ENVS.clear()


os.register_at_fork(after_in_child=_close_inherited_lmdb_envs)


def shared_lmdb_env(path, readonly=True, lock=False, readahead=False, **kwargs):
    """One lmdb environment per path per process (py-lmdb 3 refuses a second open)."""
    import lmdb
    key = (osp.realpath(path), readonly, lock, readahead)
    if key not in _LMDB_ENVS:
        _LMDB_ENVS[key] = lmdb.open(path, readonly=readonly, lock=lock, readahead=readahead, **kwargs)
    return _LMDB_ENVS[key]


def fix_b11_lmdb_second_open():
    """B11: every basicsr dataset opens its own lmdb env; py-lmdb 3 rejects the second one in a process."""
    from basicsr.utils.file_client import LmdbBackend

    def __init__(self, db_paths, client_keys='default', readonly=True, lock=False, readahead=False, **kwargs):
        client_keys = [client_keys] if isinstance(client_keys, str) else list(client_keys)
        self.db_paths = [str(p) for p in (db_paths if isinstance(db_paths, (list, tuple)) else [db_paths])]
        if len(client_keys) != len(self.db_paths):
            raise ValueError(f'io_backend: {len(client_keys)} client_keys for {len(self.db_paths)} db_paths')
        self._client = {
            client: shared_lmdb_env(path, readonly=readonly, lock=lock, readahead=readahead, **kwargs)
            for client, path in zip(client_keys, self.db_paths)
        }

    _patch('B11_lmdb_second_open', LmdbBackend, '__init__', __init__)


def fix_b14_only_adam():
    """B14: BaseModel.get_optimizer knows only Adam; accept this package's optimizers (OBProxSG) and any
    torch.optim optimizer by name."""
    import torch
    from basicsr.models.base_model import BaseModel

    def get_optimizer(self, optim_type, params, lr, **kwargs):
        from basicsr_multigrid.optim import OPTIMIZER_REGISTRY  # imported late: compat runs before registration
        if optim_type in OPTIMIZER_REGISTRY:
            optimizer_cls = OPTIMIZER_REGISTRY.get(optim_type)
        else:
            optimizer_cls = getattr(torch.optim, optim_type, None)
            if not (isinstance(optimizer_cls, type) and issubclass(optimizer_cls, torch.optim.Optimizer)):
                raise OptionError(f'train.optim_g.type: unknown optimizer {optim_type!r}; use OBProxSG or a '
                                  'torch.optim class name')
        try:
            return optimizer_cls(params, lr, **kwargs)
        except (TypeError, ValueError) as error:  # unknown or out-of-range arguments: one line naming the section
            raise OptionError(f'train.optim_g ({optim_type}): {error}') from None

    _patch('B14_only_adam', BaseModel, 'get_optimizer', get_optimizer)


def fix_b17_spynet_below_33px():
    """B17: SpyNet crashes on inputs of 32 px and less (its 0x0 initial flow cannot be upsampled), and it
    would upscale any input below 32 px to 32 px (4x the work at LR 16).

    The initial flow is all zeros, so starting it at the coarsest level's own size and skipping the first
    x2 upsample gives bit-identical flows wherever the stock code runs. Inputs of 16 px and less run the
    pyramid's finest levels only, at their own size (rounded up to the pyramid's multiple), so a patch
    half as wide costs a quarter, as the multigrid cost model assumes.
    """
    import torch
    import torch.nn.functional as F
    from basicsr.archs.arch_util import flow_warp
    from basicsr.archs.spynet_arch import SpyNet

    def process(self, ref, supp, num_levels=6):
        refs, supps = [self.preprocess(ref)], [self.preprocess(supp)]
        for _ in range(num_levels - 1):
            refs.insert(0, F.avg_pool2d(refs[0], kernel_size=2, stride=2, count_include_pad=False))
            supps.insert(0, F.avg_pool2d(supps[0], kernel_size=2, stride=2, count_include_pad=False))
        modules = self.basic_module[len(self.basic_module) - num_levels:]  # the finest levels
        flow = refs[0].new_zeros([refs[0].size(0), 2, refs[0].size(2), refs[0].size(3)])
        for level, (ref_level, supp_level) in enumerate(zip(refs, supps)):
            upsampled = flow if level == 0 else _upsample_flow(flow, ref_level.shape[2:])
            warped = flow_warp(supp_level, upsampled.permute(0, 2, 3, 1), interp_mode='bilinear', padding_mode='border')
            flow = modules[level](torch.cat([ref_level, warped, upsampled], 1)) + upsampled
        return flow

    def _upsample_flow(flow, size):
        upsampled = F.interpolate(flow, scale_factor=2, mode='bilinear', align_corners=True) * 2.0
        pad_bottom, pad_right = size[0] - upsampled.size(2), size[1] - upsampled.size(3)
        if pad_bottom or pad_right:
            upsampled = F.pad(upsampled, pad=[0, pad_right, 0, pad_bottom], mode='replicate')
        return upsampled

    original_forward = SpyNet.__dict__['forward']

    def forward(self, ref, supp):
        h, w = ref.shape[2:]
        if min(h, w) > 16:
            return original_forward(self, ref, supp)
        num_levels = max(2, math.ceil(math.log2(min(h, w))) + 1)  # coarsest level ~1 px, as at 32 px
        multiple = 2**(num_levels - 1)
        h_padded, w_padded = math.ceil(h / multiple) * multiple, math.ceil(w / multiple) * multiple
        ref = F.interpolate(ref, size=(h_padded, w_padded), mode='bilinear', align_corners=False)
        supp = F.interpolate(supp, size=(h_padded, w_padded), mode='bilinear', align_corners=False)
        flow = F.interpolate(self.process(ref, supp, num_levels), size=(h, w), mode='bilinear', align_corners=False)
        return flow * flow.new_tensor([w / w_padded, h / h_padded]).view(1, 2, 1, 1)

    _patch('B17_spynet_below_33px', SpyNet, 'process', process)
    _patch('B17_spynet_below_33px', SpyNet, 'forward', forward)


def fix_b18_basicvsrpp_below_64px():
    """B18: BasicVSR++ asserts LR inputs >= 64 px, a SpyNet limit that B17 removes.

    Inputs of 64 px and more (and CPU-cached long clips) still take basicsr's own forward; smaller ones run
    the same steps (features, flows, second-order propagation, upsampling) without the assert.
    """
    import torch.nn.functional as F
    from basicsr.archs.basicvsrpp_arch import BasicVSRPlusPlus
    original_forward = BasicVSRPlusPlus.__dict__['forward']

    def forward(self, lqs):
        n, t, c, h, w = lqs.size()
        low_res = lqs if self.is_low_res_input else F.interpolate(
            lqs.view(-1, c, h, w), scale_factor=0.25, mode='bicubic').view(n, t, c, h // 4, w // 4)
        if min(low_res.shape[-2:]) >= 64 or t > self.cpu_cache_length:
            return original_forward(self, lqs)
        self.cpu_cache = False
        self.check_if_mirror_extended(lqs)
        spatial = self.feat_extract(lqs.view(-1, c, h, w))
        feats = {'spatial': list(spatial.view(n, t, *spatial.shape[1:]).unbind(1))}
        flows_forward, flows_backward = self.compute_flow(low_res)
        for iteration in (1, 2):
            for direction in ('backward', 'forward'):
                module = f'{direction}_{iteration}'
                feats[module] = []
                if direction == 'backward':
                    flows = flows_backward
                else:  # a mirror-extended clip has no forward flows: they are the backward ones reversed
                    flows = flows_forward if flows_forward is not None else flows_backward.flip(1)
                feats = self.propagate(feats, flows, module)
        return self.upsample(lqs, feats)

    _patch('B18_basicvsrpp_below_64px', BasicVSRPlusPlus, 'forward', forward)


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
    fix_b4_cpu_resume()
    fix_b6_video_validation_on_cpu()
    fix_b6b_feed_data_copy()
    fix_b7_cuda_prefetcher_on_cpu()
    fix_b8_distributed_on_cpu()
    fix_b9_basicvsrpp_alignment_on_cpu()
    fix_b11_lmdb_second_open()
    fix_b14_only_adam()
    fix_b17_spynet_below_33px()
    fix_b18_basicvsrpp_below_64px()
    _APPLIED = True


__all__ = ['apply', 'unpatched', 'ORIGINALS', 'load_resume_state', 'latest_training_state', 'shared_lmdb_env',
           'fix_b3_local_rank_argv']
