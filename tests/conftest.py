"""Shared fixtures and helpers: a small demo dataset built once per session, option files derived from the shipped
demo options, training in a subprocess exactly as users run it, and what a run recorded (read back with the
package's own reader)."""
import copy
import hashlib
import os
import signal
import socket
import subprocess
import sys
from os import path as osp

import av
import numpy as np
import pytest
import torch
import yaml

import basicsr_multigrid  # noqa: F401  (before any basicsr import: compat fixes + registration)
from basicsr_multigrid.utils.channel_units import channel_units
from basicsr_multigrid.training.recorder import read_run

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_OPTIONS = osp.join(REPO_ROOT, 'options', 'train', 'demo', 'train_BasicVSR_demo.yml')
MULTIGRID_DEMO = osp.join(REPO_ROOT, 'options', 'train', 'demo', 'train_BasicVSR_multigrid_demo.yml')


def pytest_configure(config):
    """Under pytest-xdist (`make test` runs two workers) the workers share the cores: one thread each, and in
    the processes they start, so that no two multi-threaded processes spin against each other."""
    if os.environ.get('PYTEST_XDIST_WORKER'):
        os.environ['OMP_NUM_THREADS'] = '1'
        torch.set_num_threads(1)


def build_demo_data(tmp_path_factory, folder, **sizes):
    """Demo clips made by the same code as `make demo`, in a new temporary folder; returns their root."""
    from basicsr_multigrid.data.demo_data import make_demo_dataset
    root = str(tmp_path_factory.mktemp(folder) / 'data')
    make_demo_dataset(root, **sizes)
    return root


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory):
    """Real-texture demo clips (128x128 GT, 32x32 LQ)."""
    return build_demo_data(tmp_path_factory, 'demo', size=128, train_frames=12, val_frames=6, seed=0)


@pytest.fixture(scope='module')
def one_torch_thread():
    """Small forwards gain little from threads, and lose a lot to oversubscription on a busy machine."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def set_dotted(opt, dotted_key, value):
    *parents, last = dotted_key.split('.')
    node = opt
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def demo_options(demo_data, base=DEMO_OPTIONS, **overrides):
    """The shipped demo options pointed at `demo_data`, shrunk for tests; overrides use dotted keys
    with '__' for '.', e.g. train__total_iter=10."""
    opt = copy.deepcopy(load_yaml(base))
    for split, key in (('train', 'train'), ('val', 'val')):
        dataset = opt['datasets'][key]
        dataset['dataroot_gt'] = osp.join(demo_data, split, 'GT')
        dataset['dataroot_lq'] = osp.join(demo_data, split, 'LQ')
        dataset['meta_info_file'] = osp.join(demo_data, f'meta_info_{split}.txt')
    for dotted, value in overrides.items():
        set_dotted(opt, dotted.replace('__', '.'), value)
    return opt


# The training entry point as train.py runs it (one-line errors, exit status 2 to 5), its folders under the first
# argument
TRAIN_COMMAND = [sys.executable, '-m', 'basicsr_multigrid.training']


def write_options(opt, folder, filename='options.yml'):
    path = osp.join(str(folder), filename)
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


def run_training(root_path, options_path, *extra_args, cwd=None, check=True, timeout=600):
    """Run the training runner in a fresh process as train.py does, experiments under root_path.

    The result's stdout holds stdout and stderr (where BasicSR's logger writes) interleaved."""
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    result = subprocess.run([*TRAIN_COMMAND, str(root_path), '-opt', options_path, *extra_args],
                            cwd=cwd or REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f'training failed ({result.returncode}):\n{result.stdout[-6000:]}')
    return result


def resume_from_checkpoint(root, name, iteration, options_path):
    """Resume the finished run `name` under `root` from its checkpoint of `iteration` alone (the later ones
    removed) with --auto_resume; returns the run's iteration records after it."""
    states = osp.join(str(root), 'experiments', name, 'training_states')
    for state in os.listdir(states):
        if state != f'{iteration}.state':
            os.remove(osp.join(states, state))
    run_training(root, options_path, '--auto_resume')
    return recorded(root, name).iterations


def run_tool(name, *args, timeout=600):
    """`python tools/<name>.py args` in a fresh process, as a user runs it (tests never import a tool)."""
    return subprocess.run([sys.executable, osp.join('tools', f'{name}.py'), *map(str, args)], cwd=REPO_ROOT,
                          env=dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore'), capture_output=True,
                          text=True, timeout=timeout)


def train_until(root, opt_path, stop_line=None, *extra, send=signal.SIGKILL, to_group=False, returncode=None,
                env=None, preexec_fn=None):
    """Run training; with `stop_line`, send it `send` as soon as a log line contains that text (after SIGKILL the
    log ends there; after another signal the run goes on to exit by itself), with `to_group` to every process of
    the run (loader workers too, as slurm and Ctrl-C do). The exit status must be `returncode` (default: killed
    by SIGKILL, or 0 without `stop_line`). Returns the log."""
    if returncode is None:
        returncode = -signal.SIGKILL if stop_line and send == signal.SIGKILL else 0
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore', **(env or {}))
    process = subprocess.Popen([*TRAIN_COMMAND, str(root), '-opt', opt_path, *extra], cwd=REPO_ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                               preexec_fn=preexec_fn, start_new_session=to_group)
    lines = []
    for line in process.stdout:
        lines.append(line)
        if stop_line and stop_line in line:
            (os.killpg if to_group else os.kill)(process.pid, send)
            stop_line = None
            if send == signal.SIGKILL:
                break
    process.stdout.close()
    process.wait(timeout=600)
    log = ''.join(lines)
    assert process.returncode == returncode, log[-4000:]
    return log


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def rank_environment():
    """The environment of a rank started by hand or by torchrun: one thread, no warnings, and the package
    importable from the driver's folder."""
    return dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore', PYTHONPATH=REPO_ROOT)


def write_rank_driver(folder):
    """The script every rank of a distributed run executes (train.py, experiments under its first argument),
    written into `folder`; returns its path."""
    driver = osp.join(str(folder), 'driver.py')
    with open(driver, 'w') as f:
        f.write('import sys\n'
                'from basicsr_multigrid.training.cli import run_cli\n'
                'from basicsr_multigrid.training.runner import train_pipeline\n'
                'run_cli(train_pipeline, sys.argv.pop(1))  # train.py, experiments under argv[1]\n')
    return driver


def final_weights(root, name):
    return torch.load(osp.join(root, 'experiments', name, 'models', 'net_g_latest.pth'), weights_only=True)['params']


def has_cpp_compiler():
    """Whether torch.compile can build CPU kernels here (inductor finds a C++ compiler)."""
    from basicsr_multigrid.utils.cpu_compiler import cpu_compiler_problem
    return cpu_compiler_problem() is None


def tree_digest(folder):
    """Digest of every folder name, file name and file content under `folder`: equal iff nothing changed."""
    digest = hashlib.sha1()
    for root, dirs, files in sorted(os.walk(folder)):
        digest.update(repr(sorted(dirs)).encode())
        for name in sorted(files):
            with open(osp.join(root, name), 'rb') as f:
                digest.update(name.encode() + f.read())
    return digest.hexdigest()


def recorded(root, name):
    """What the run `name` under `root` recorded (train log, validations, phase timing)."""
    return read_run(osp.join(str(root), 'experiments', name))


def metric_records(root, name):
    return recorded(root, name).validations


def steps(iteration_records):
    """{iter: (lr, phase, stage, lq_size, num_frame, batch)} from train_log records: the LR set and the shape of
    the batch the network received at each logged iteration (a later record of an iteration wins)."""
    return {r['iter']: (r['lr'], r['phase'], r['stage'], r['lq_size'], r['num_frame'], r['batch'])
            for r in iteration_records}


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


def train_dataset_options(root, **overrides):
    """Options of a MultigridPairedVideoDataset on the demo data's train split."""
    opt = dict(name='demo_train', phase='train', scale=4, dataroot_gt=osp.join(root, 'train', 'GT'),
               dataroot_lq=osp.join(root, 'train', 'LQ'), meta_info_file=osp.join(root, 'meta_info_train.txt'),
               io_backend={'type': 'disk'}, num_frame=5, gt_size=64, use_hflip=True, use_rot=True)
    opt.update(overrides)
    return opt


# A video model built in memory (tiny BasicVSR, no data, no experiment folder) for tests of its training step.
VIDEO_MODEL_OPTIONS = {
    'name': 'video_model', 'scale': 4, 'num_gpu': 0, 'is_train': True, 'dist': False, 'rank': 0, 'world_size': 1,
    'network_g': {'type': 'BasicVSR', 'num_feat': 4, 'num_block': 1, 'spynet_path': None},
    'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
    'train': {'optim_g': {'type': 'Adam', 'lr': 1e-3}, 'flow_lr_mul': 0.125, 'fix_flow': 5,
              'scheduler': {'type': 'MultiStepRestartLR', 'milestones': [100], 'gamma': 0.5},
              'total_iter': 100, 'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}},
    'val': {'val_freq': 100, 'metrics': None}}


def distilled_model(tmp_path, **train):
    """A DistilledVideoRecurrentModel of VIDEO_MODEL_OPTIONS distilling from a BasicVSR of twice the width (its
    weights saved under tmp_path); `train` updates the train options."""
    from basicsr.archs.basicvsr_arch import BasicVSR
    from basicsr.models import build_model
    torch.manual_seed(1)
    torch.save({'params': BasicVSR(num_feat=8, num_block=1).state_dict()}, tmp_path / 'teacher.pth')
    opt = copy.deepcopy(VIDEO_MODEL_OPTIONS)
    opt['model_type'] = 'DistilledVideoRecurrentModel'
    opt['network_t'] = {'type': 'BasicVSR', 'num_feat': 8, 'num_block': 1, 'spynet_path': None}
    opt['path']['pretrain_network_t'] = str(tmp_path / 'teacher.pth')
    opt['train'].update(fix_flow=None, **train)
    return build_model(opt)


TINY_VSR_NETWORKS = {  # arch -> arguments of a tiny network of each supported VSR arch
    'BasicVSR': dict(num_feat=8, num_block=1),
    'IconVSR': dict(num_feat=8, num_block=1, keyframe_stride=5, temporal_padding=2),
    'BasicVSRPlusPlus': dict(mid_channels=8, num_blocks=1),
    'EDVR': dict(num_in_ch=3, num_out_ch=3, num_feat=16, num_frame=5, deformable_groups=2, num_extract_block=1,
                 num_reconstruct_block=1, with_tsa=True),
}


class NormalisedWidth(torch.nn.Module):
    """conv -> BatchNorm -> ReLU -> 1x1 head; the conv's output channels are one width, `channels` (channel-unit
    and group-lasso tests)."""

    def __init__(self, in_channels, channels, out_channels, kernel_size=1, conv_bias=True):
        super().__init__()
        self.conv = torch.nn.Conv2d(in_channels, channels, kernel_size, padding=kernel_size // 2, bias=conv_bias)
        self.bn, self.head = torch.nn.BatchNorm2d(channels), torch.nn.Conv2d(channels, out_channels, 1)

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.conv(x))))

    def width_groups(self):
        return {'channels': [('conv.weight', 0)]}

    def channel_units(self):
        return channel_units(self)


TINY_WIDTHS = dict(feature_channels=[32, 32, 32, 32], kernel_channels=4, grid_channels=[4, 4, 4],
                   tem_channels=[4, 4, 4, 4], tem_fuse_channels=4, pad_multiple=64)
# Tiny STMFNet / STMFNetMini widths (ResNeXt branches need feature widths >= 32), all distinct so width groups can
# be told apart.
TINY_DISTINCT_WIDTHS = dict(feature_channels=[32, 34, 36, 38], kernel_channels=5, grid_channels=[5, 8, 10],
                            tem_channels=[3, 7, 11, 15], tem_fuse_channels=2)


def vfi_options(demo_data, base, name, **overrides):
    """A shipped demo VFI option file on the test demo data, tiny widths, a few iterations. The test clips are
    too short for held-out windows at gap 2, so validation reads one window of each training clip."""
    opt = load_yaml(osp.join(REPO_ROOT, 'options', 'train', 'demo', base))
    opt['name'] = name
    for phase in ('train', 'val'):
        opt['datasets'][phase].update(dataroot=osp.join(demo_data, 'train', 'GT'),
                                      meta_info_file=osp.join(demo_data, 'meta_info_train.txt'))
    opt['datasets']['val']['window_stride'] = 6
    for key in ('network_g', 'network_t'):
        if key in opt:
            opt[key].update(TINY_WIDTHS)
    opt['datasets']['train'].update(num_worker_per_gpu=0)
    opt['train'].update(total_iter=3)
    opt['train']['scheduler']['milestones'] = [2]
    opt['val']['val_freq'] = 3
    opt['logger'].update(print_freq=1, save_checkpoint_freq=3)
    for dotted, value in overrides.items():
        set_dotted(opt, dotted.replace('__', '.'), value)
    return opt


@pytest.fixture(scope='session')
def vfi_teacher(demo_data, tmp_path_factory):
    """A tiny ST-MFNet trained for 3 iterations on the demo VFI data (experiment vfi_teacher under the root)."""
    root = tmp_path_factory.mktemp('vfi_teacher')
    run_training(root, write_options(vfi_options(demo_data, 'train_STMFNet_demo.yml', 'vfi_teacher'), root))
    return root


@pytest.fixture
def compiled_op_calls(monkeypatch):
    """Names of the warping ops that run through their compiled version (archs/ops/fused.py), one per call."""
    from basicsr_multigrid.archs.ops import fused
    calls, compiled = [], fused._compiled

    def spied(function):
        def run(*args, **kwargs):
            calls.append(function.__name__)
            return compiled(function)(*args, **kwargs)
        return run
    monkeypatch.setattr(fused, '_compiled', spied)
    return calls


def textured_sequence(step_x=2, step_y=-1, size=64, seed=0):
    """(1, 4, 3, size, size) frames of one smooth random texture moving (step_x, step_y) whole pixels per frame,
    and the frame halfway between the middle two (a shift of 1.5 steps); textures from a blurred noise field."""
    noise = torch.rand(1, 3, size + 32, size + 32, generator=torch.Generator().manual_seed(seed))
    texture = torch.nn.functional.avg_pool2d(torch.nn.functional.interpolate(noise, scale_factor=2, mode='bilinear'),
                                             5, stride=2, padding=2)
    steps = [0, 2, 3, 4, 6]  # I0, I1, middle, I2, I3 in half steps
    shifted = [torch.roll(texture, (step_y * k // 2, step_x * k // 2), dims=(-2, -1))[..., 16:16 + size, 16:16 + size]
               for k in steps]
    return torch.stack([shifted[i] for i in (0, 1, 3, 4)], dim=1), shifted[2]


def random_frames(count, height=16, width=20, seed=0):
    """`count` RGB uint8 frames of uniform noise."""
    state = np.random.RandomState(seed)
    return [state.randint(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def make_video(path, frames, fps=10, audio=True):
    """An H.264 mp4 of `frames`, with a mono AAC sine of the same length when `audio`."""
    height, width = frames[0].shape[:2]
    with av.open(path, 'w') as container:
        video = container.add_stream('libx264', rate=fps)
        video.width, video.height, video.pix_fmt = width, height, 'yuv420p'
        sound = container.add_stream('aac', rate=16000) if audio else None
        if sound is not None:
            sound.layout = 'mono'
        for frame in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            samples = (0.2 * np.sin(np.arange(int(16000 * len(frames) / fps)) * 0.17)).astype(np.float32)[None]
            for start in range(0, samples.shape[1], 1024):
                chunk = av.AudioFrame.from_ndarray(samples[:, start:start + 1024], format='fltp', layout='mono')
                chunk.sample_rate, chunk.pts = 16000, start
                for packet in sound.encode(chunk):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)


def decoded(path):
    """(RGB frames, frame rate, codec names of the audio streams) of the video file at `path`."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format='rgb24') for frame in container.decode(video=0)]
        return frames, stream.average_rate, [s.codec_context.name for s in container.streams.audio]
