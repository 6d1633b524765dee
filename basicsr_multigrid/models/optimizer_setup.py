"""The generator's optimizer of this package's models, from `train.optim_g`."""
from basicsr_multigrid.optim import optimizer_param_groups


def setup_generator_optimizer(model):
    """`model.optimizer_g` over `net_g`'s parameters, grouped per output channel for OBProxSG's channel sparsity."""
    optim_opt = dict(model.opt['train']['optim_g'])
    params = optimizer_param_groups(optim_opt, model.get_bare_model(model.net_g))
    model.optimizer_g = model.get_optimizer(optim_opt.pop('type'), params, **optim_opt)
    model.optimizers.append(model.optimizer_g)
