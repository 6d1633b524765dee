"""`torch.compile` of the generator, set by `train.compile`: `false` (the default), `true`, or a mapping of
`mode` (torch.compile's: default, reduce-overhead, max-autotune, ...) and `dynamic` (default false).

With `dynamic: false` every new input shape is compiled once and then reused: on a multigrid schedule that is one
compilation per phase shape, at the phase's first iteration. The recompile limit is raised so that networks that
call a compiled function at many sizes (SpyNet's pyramid levels, flow warping) keep compiling instead of falling
back to eager. Validation runs eagerly (full frames would compile yet more shapes for a few forward passes).
Steps that compiled are counted and timed apart from training (`CompileMeter`).
"""
import importlib.util
import time

import torch

from basicsr_multigrid.utils.cpu_compiler import cpu_compiler_problem
from basicsr_multigrid.utils.errors import OptionError

COMPILE_KEYS = ('mode', 'dynamic')
RECOMPILE_LIMIT = 256  # graphs per compiled function: shapes x call sites of a recurrent flow network


def compile_options(opt, device_type):
    """torch.compile keyword arguments from `train.compile`, or None when it is off. OptionError naming the key,
    also when the compiler the backend needs is missing."""
    value = (opt.get('train') or {}).get('compile', False)
    if value is False or value is None:
        return None
    if value is True:
        value = {}
    if not isinstance(value, dict):
        raise OptionError(f'train.compile: {value!r} is not one of false, true or a mapping (mode, dynamic)')
    unknown = [key for key in value if key not in COMPILE_KEYS]
    if unknown:
        raise OptionError(f"train.compile.{unknown[0]}: unknown key (known: {', '.join(COMPILE_KEYS)})")
    _check_compiler(device_type)
    return dict({'dynamic': False}, **value)


def _check_compiler(device_type):
    if device_type == 'cuda':
        if importlib.util.find_spec('triton') is None:
            raise OptionError('train.compile: needs triton on CUDA (pip install triton); set train.compile: false')
        return
    problem = cpu_compiler_problem()
    if problem:
        raise OptionError(f'train.compile: no C++ compiler for torch.compile on CPU ({problem}); '
                          'install g++ or set train.compile: false')


def compile_network(network, options):
    """Compile `network` in place (its state dict keeps its names, so checkpoints do not change)."""
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    network.compile(**options)


def eager():
    """Run compiled modules eagerly inside this context (validation)."""
    return torch.compiler.set_stance('force_eager')


def compiled_graph_count():
    """Graphs torch.compile has built in this process so far (dynamo's own counter)."""
    return torch._dynamo.utils.counters['stats']['unique_graphs']


class CompileMeter:
    """Around each training step: whether it compiled new graphs, and the seconds and count of such steps."""

    def __init__(self):
        self.steps, self.graphs, self.seconds = 0, 0, 0.0
        self.last_step_seconds = 0.0  # of the latest step if it compiled, else 0

    def __enter__(self):
        self.graphs_before, self.started = compiled_graph_count(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        new_graphs = compiled_graph_count() - self.graphs_before
        self.last_step_seconds = time.perf_counter() - self.started if new_graphs else 0.0
        if new_graphs:
            self.steps, self.graphs = self.steps + 1, self.graphs + new_graphs
            self.seconds += self.last_step_seconds
        return False
