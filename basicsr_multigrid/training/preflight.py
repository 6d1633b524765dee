"""Checks of a training run that need no experiment folder: run before anything is written, so a bad option
ends the run with one line naming the key and nothing on disk changes."""
from basicsr.archs import build_network
from basicsr.utils.registry import MODEL_REGISTRY

from basicsr_multigrid.hooks import build_hooks
from basicsr_multigrid.hooks.linear_warmup_hook import LinearWarmupHook
from basicsr_multigrid.models.compilation import compile_options
from basicsr_multigrid.models.divergence import divergence_action, max_bad_steps
from basicsr_multigrid.models.ema_validation import ema_validation_mode
from basicsr_multigrid.models.precision import named_submodules, precision_options
from basicsr_multigrid.models.runner_contract import contract_of
from basicsr_multigrid.models.teacher import check_teacher
from basicsr_multigrid.multigrid.dataloader import build_schedule, dataset_class, uses_scheduled_shapes
from basicsr_multigrid.optim import uses_channel_groups
from basicsr_multigrid.training.preemption import stop_signals
from basicsr_multigrid.utils.distributed import collective_timeout
from basicsr_multigrid.utils.errors import OptionError


def preflight(opt):
    """Data roots, meta file, the schedule against the network and the data, the hooks, this package's datasets,
    the teacher checkpoint of a distillation run. Raises OptionError naming the key. Returns the run's multigrid
    schedule (checked), or None when the training set has fixed shapes (basicsr's own datasets)."""
    _check_launcher(opt)
    train_opt = opt['datasets'].get('train', {})
    schedule = None
    if uses_scheduled_shapes(opt):
        schedule = build_schedule(opt, dataset_class(train_opt).schedule_clips(train_opt))
    elif opt['train'].get('multigrid') is not None:
        raise OptionError(f"datasets.train.type: {train_opt.get('type')} cannot change shapes per batch; use "
                          'MultigridPairedVideoDataset with train.multigrid')
    elif (opt['train'].get('scheduler') or {}).get('periods') == 'stages':
        raise OptionError('train.scheduler.periods: "stages" needs a multigrid schedule (MultigridPairedVideoDataset)')
    for index, hook in enumerate(build_hooks(opt['train'].get('hooks'))):
        if schedule is None and getattr(hook, 'needs_schedule', False):
            raise OptionError(f'train.hooks[{index}] ({type(hook).__name__}): needs a multigrid schedule '
                              '(datasets.train.type: MultigridPairedVideoDataset)')
        if isinstance(hook, LinearWarmupHook) and (opt['train'].get('warmup_iter') or -1) > 0:
            raise OptionError(f"train.warmup_iter: {opt['train']['warmup_iter']} and train.hooks[{index}] "
                              '(LinearWarmupHook) both warm up the LR, and their factors multiply (the LR grows as '
                              'the square of the iteration); keep one, e.g. warmup_iter: -1')
    _check_loop_options(opt)
    _check_sparsity_losses(opt['train'])
    _check_step_options(opt)
    for phase, dataset_opt in opt['datasets'].items():
        if phase != 'train' and phase.split('_')[0] != 'val':
            raise OptionError(f'datasets.{phase}: unknown dataset phase; use train, val or val_<n>')
        _check_own_dataset(dataset_opt)
    check_teacher(opt)
    return schedule


def require_manual_seed(written_opt, argv):
    """Training needs `manual_seed` in the option file (or `--force_yml manual_seed=N`): without it BasicSR draws a
    different seed on every rank, so ranks read overlapping samples, and on every resume, so a resumed run reads
    another data order. (Checked on the file as written: basicsr fills in a random seed when parsing.)"""
    if written_opt is None or written_opt.get('manual_seed') is not None:
        return
    if any(arg.startswith('manual_seed=') for arg in argv):
        return
    raise OptionError('manual_seed: not set; without it every rank and every resumed run draws its own seed (ranks '
                      'read overlapping samples, a resume reads another data order); set manual_seed: 0 (any integer)')


def _check_launcher(opt):
    """`num_gpu` > 1 in a single process trains with one GPU's batch and one GPU's LR scaling, silently; a bad
    `dist_params.timeout` is reported whether or not this run is distributed."""
    collective_timeout(opt)
    gpus = opt.get('num_gpu')
    if isinstance(gpus, int) and gpus > 1 and not opt.get('dist'):
        raise OptionError(f'num_gpu: {gpus} without a launcher runs one process on one GPU (global batch '
                          f"{opt['datasets'].get('train', {}).get('batch_size_per_gpu')}, not x{gpus}); start one "
                          f'process per GPU: torchrun --nproc_per_node={gpus} basicsr_multigrid/train.py -opt ... '
                          '--launcher pytorch (or slurm), or set num_gpu: 1')


def _check_loop_options(opt):
    """The keys the loop reads, and the prefetcher, so that they cannot fail once folders exist."""
    for section, key in (('logger', 'print_freq'), ('logger', 'save_checkpoint_freq')) + (
            (('val', 'val_freq'),) if opt.get('val') is not None else ()):
        value = (opt.get(section) or {}).get(key)
        if not isinstance(value, int) or value < 1:
            raise OptionError(f'{section}.{key}: must be a positive integer, got {value!r}')
    ema_validation_mode(opt)
    stop_signals(opt)
    train_opt = opt['datasets'].get('train', {})
    mode = train_opt.get('prefetch_mode')
    if mode not in (None, 'cpu', 'cuda'):
        raise OptionError(f'datasets.train.prefetch_mode: {mode!r} is not one of ~, cpu, cuda')
    if mode == 'cuda' and train_opt.get('pin_memory') is not True:
        raise OptionError('datasets.train.pin_memory: must be true with prefetch_mode: cuda')


def _check_step_options(opt):
    """`train.precision`, `fp32_modules`, `channels_last`, `compile` (and its compiler) for the run's device,
    `max_bad_steps`, and a model that applies them."""
    device_type = 'cuda' if opt.get('num_gpu', 0) != 0 else 'cpu'
    precision, fp32_modules, channels_last = precision_options(opt, device_type)
    compiling = compile_options(opt, device_type)
    max_bad_steps(opt)
    divergence_action(opt)
    if fp32_modules:
        named_submodules(build_network(opt['network_g']), fp32_modules)
    registered = opt.get('model_type') in MODEL_REGISTRY
    own_step = registered and contract_of(MODEL_REGISTRY.get(opt['model_type'])).owns_training_step
    used = [key for key, on in (('precision', precision != 'fp32'), ('channels_last', channels_last),
                                ('compile', compiling is not None), ('max_bad_steps', 'max_bad_steps' in opt['train']),
                                ('on_divergence', 'on_divergence' in opt['train']))
            if on]
    if used and not own_step:
        raise OptionError(f"train.{used[0]}: model_type {opt.get('model_type')} trains in BasicSR's own fp32 step; use "
                          'a model of this package (MultigridVideoRecurrentModel, MultigridEDVRModel, '
                          'FrameInterpolationModel, KnowledgeDistillationModel) or one that declares '
                          'owns_training_step (models/runner_contract.py)')


def _check_sparsity_losses(train_opt):
    """OBProxSG's channel lambda is defined against mean-reduced losses (optim/obproxsg.py): a summed loss would
    scale every gradient, and so shrink lambda's effect, by the number of pixels in a batch."""
    optim_opt = train_opt.get('optim_g') or {}
    if 'type' not in optim_opt or not uses_channel_groups(optim_opt):
        return
    for key in ('pixel_opt', 'distill_opt', 'perceptual_opt'):
        specs = train_opt.get(key) or []
        for index, spec in enumerate(specs if isinstance(specs, list) else [specs]):
            if isinstance(spec, dict) and spec.get('reduction') == 'sum':
                where = f'train.{key}' + (f'[{index}]' if isinstance(specs, list) else '')
                raise OptionError(f'{where}.reduction: sum with OBProxSG channel sparsity makes lambda_ depend on the '
                                  'batch and patch size; use reduction: mean (lambda_ is defined against it)')


def _check_own_dataset(dataset_opt):
    """Construct this package's datasets once: option keys, frame files and shapes, nothing decoded. Not via
    basicsr's build_dataset, whose logging would initialise the root logger before its log file exists."""
    dataset_cls = dataset_class(dataset_opt)
    if dataset_cls.__module__.startswith('basicsr_multigrid.'):
        dataset_cls(dataset_opt)
