"""The generator's optimizer of this package's models, from `train.optim_g`."""
from basicsr_multigrid.optim import optimizer_param_groups


def setup_generator_optimizer(model, flow_lr_mul=1):
    """`model.optimizer_g` over `net_g`'s parameters, grouped in channel units for OBProxSG's channel sparsity;
    the flow network's parameters (`spynet`) at `flow_lr_mul` x the LR, as basicsr's VideoRecurrentModel does."""
    optim_opt = dict(model.opt['train']['optim_g'])
    network = model.get_bare_model(model.net_g)
    params = optimizer_param_groups(optim_opt, network)
    if flow_lr_mul != 1:
        params = flow_lr_groups(params, network, optim_opt['lr'] * flow_lr_mul)
    model.optimizer_g = model.get_optimizer(optim_opt.pop('type'), params, **optim_opt)
    model.optimizers.append(model.optimizer_g)


def flow_lr_groups(groups, network, flow_lr):
    """`groups` (dicts or a plain parameter list) with the flow network's parameters in groups of their own at
    `flow_lr`; a channel unit is one layer, so only plain groups are split."""
    flow = {id(param) for name, param in network.named_parameters() if 'spynet' in name}
    groups = groups if isinstance(groups[0], dict) else [{'params': groups}]
    result = []
    for group in groups:
        flow_params = [p for p in group['params'] if id(p) in flow]
        others = [p for p in group['params'] if id(p) not in flow]
        if others:
            result.append(dict(group, params=others))
        if flow_params:
            if others and group.get('channel_dims') is not None:
                raise ValueError(f"channel unit {group.get('unit')} mixes flow and other parameters")
            result.append(dict(group, params=flow_params, lr=flow_lr))
    return result
