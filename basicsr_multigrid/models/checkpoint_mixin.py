"""Checkpoints a run can always resume from: atomic files, weights_only-loadable states, RNG states (and fp16's
loss scale); pretrained weights from any layout utils/weights.py reads."""
import os

from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import get_dist_info, master_only

from basicsr_multigrid.utils.atomic_io import atomic_torch_save
from basicsr_multigrid.utils.checkpoint import from_primitives, rng_states, set_rng_states, to_primitives
from basicsr_multigrid.utils.weights import load_weights, read_weights


class AtomicCheckpointMixin:
    """Put before a BasicSR model class. Model and state files are written to a temporary file and renamed,
    so a kill never leaves a truncated newest checkpoint; states hold only tensors and primitives (torch
    `weights_only=True` loads them) plus the random states of rank 0, restored on resume. `path.pretrain_network_g`
    reads BasicSR, ST-MFNet and plain state dicts (`path.param_key_g: auto` picks the entry and logs which)."""
    keeps_lr_scale = True  # runner contract (models/runner_contract.py)
    lr_scale = 1.0  # the LR factor that rollbacks left (training/rollback.py); the runner sets it

    def load_network(self, net, load_path, strict=True, param_key='params'):
        network = self.get_bare_model(net)
        if strict:
            source = load_weights(network, load_path, param_key, what=type(network).__name__,
                                  option_key='pretrained weights')
        else:
            state, source = read_weights(load_path, param_key, option_key='pretrained weights')
            expected = network.state_dict()
            state = {k: v for k, v in state.items() if k not in expected or v.shape == expected[k].shape}
            result = network.load_state_dict(state, strict=False)
            get_root_logger().warning(f'{load_path}: loaded non-strictly, {len(result.missing_keys)} missing and '
                                      f'{len(result.unexpected_keys)} unexpected keys')
        get_root_logger().info(f'Loading {type(network).__name__} from {load_path}: {source}')

    @master_only
    def save_network(self, net, net_label, current_iter, param_key='params'):
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        if len(nets) != len(keys):
            raise ValueError(f'save_network: {len(nets)} networks but {len(keys)} param keys')
        save_dict = {}
        for net_, key in zip(nets, keys):
            state = self.get_bare_model(net_).state_dict()
            save_dict[key] = {name.removeprefix('module.'): tensor.cpu() for name, tensor in state.items()}
        label = 'latest' if current_iter == -1 else current_iter
        atomic_torch_save(save_dict, os.path.join(self.opt['path']['models'], f'{net_label}_{label}.pth'))

    @master_only
    def save_training_state(self, epoch, current_iter):
        if current_iter == -1:
            return
        state = {'epoch': epoch, 'iter': current_iter,
                 'optimizers': [o.state_dict() for o in self.optimizers],
                 'schedulers': [to_primitives(s.state_dict()) for s in self.schedulers],
                 'rng': rng_states()}
        if self.lr_scale != 1.0:
            state['lr_scale'] = self.lr_scale
        scaler_state = self.precision.state_dict() if hasattr(self, 'precision') else None
        if scaler_state is not None:
            state['grad_scaler'] = scaler_state  # fp16's loss scale, so a resumed run continues with it
        atomic_torch_save(state, os.path.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    def resume_training(self, resume_state):
        resume_state = dict(resume_state, schedulers=[from_primitives(s) for s in resume_state['schedulers']])
        super().resume_training(resume_state)
        if hasattr(self, 'precision'):
            self.precision.load_state_dict(resume_state.get('grad_scaler'))
        if 'rng' in resume_state and get_dist_info()[0] == 0:
            set_rng_states(resume_state['rng'])
