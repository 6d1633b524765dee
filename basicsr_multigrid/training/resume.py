"""Which training state a run resumes from, loaded onto the device the run uses.

Unlike basicsr 1.4.2's `load_resume_state` (notes B4: it needs CUDA and looks for auto-resume states relative to
the working directory), this maps states to the run's device, loads them with `weights_only=True`, and
`--auto_resume` takes the newest complete checkpoint in `<root_path>/experiments/<name>/training_states`.
"""
from os import path as osp

import torch
from basicsr.utils import check_resume

from basicsr_multigrid.utils.checkpoint import latest_training_state, load_checkpoint
from basicsr_multigrid.utils.errors import OptionError


def load_resume_state(opt):
    """The state to resume from (`--auto_resume` or `path.resume_state`), or None for a fresh run."""
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
    if 'network_t' in opt:  # check_resume would point the teacher at a net_t_<iter>.pth that is never saved
        ignored = opt['path'].get('ignore_resume_networks') or []
        opt['path']['ignore_resume_networks'] = list(ignored) + ['network_t']
    check_resume(opt, resume_state['iter'])
    return resume_state
