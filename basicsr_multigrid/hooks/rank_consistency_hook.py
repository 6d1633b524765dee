import torch
import torch.distributed as dist
from basicsr.utils import get_root_logger
from mmengine.hooks import Hook

from basicsr_multigrid.hooks.registry import HOOKS
from basicsr_multigrid.utils.errors import OptionError


class RankMismatchError(RuntimeError):
    """DDP ranks disagree on something that must be equal on every rank."""


def first_disagreement(per_rank):
    """Index of the first rank whose values differ from rank 0's, or None when all agree."""
    return next((rank for rank, values in enumerate(per_rank) if values != per_rank[0]), None)


def weight_checksums(net):
    """Per-parameter (sum, sum of squares) in float64: equal on all ranks iff the DDP replicas match (in practice)."""
    net = getattr(net, 'module', net)
    return torch.stack([torch.stack([p.detach().double().sum(), p.detach().double().pow(2).sum()])
                        for p in net.parameters()]).flatten()


@HOOKS.register_module()
class RankConsistencyHook(Hook):
    """Under DDP, checks that every rank trains on the same batch shape at every `interval`-th iteration and,
    at the end of training, that the network weights are identical on all ranks; stops with a clear error
    otherwise. Costs one small all_gather per check; a no-op without DDP.
    """
    priority = 'LOWEST'

    def __init__(self, interval=1):
        if int(interval) < 1:
            raise OptionError(f'train.hooks.RankConsistencyHook.interval: must be >= 1, got {interval}')
        self.interval = int(interval)
        self.checked_iters = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if not dist.is_initialized() or (batch_idx + 1) % self.interval:
            return
        shapes = [tuple(data_batch[key].shape) for key in sorted(data_batch)]
        per_rank = self._gather([value for shape in shapes for value in shape], runner)
        rank = first_disagreement(per_rank)
        if rank is not None:
            raise RankMismatchError(f'iteration {batch_idx + 1}: rank {rank} trained on batch shape {per_rank[rank]}, '
                                    f'rank 0 on {per_rank[0]} ({", ".join(sorted(data_batch))})')
        self.checked_iters += 1

    def after_run(self, runner):
        if not dist.is_initialized():
            return
        per_rank = self._gather(weight_checksums(runner.model.net_g), runner)
        rank = first_disagreement(per_rank)
        if rank is not None:
            raise RankMismatchError(f'network weights differ between rank 0 and rank {rank} after training')
        get_root_logger().info(f'RankConsistencyHook: {dist.get_world_size()} ranks trained on identical batch '
                               f'shapes at {self.checked_iters} checked iterations and end with identical weights')

    @staticmethod
    def _gather(values, runner):
        device = runner.model.device
        local = torch.as_tensor(values, dtype=torch.float64, device=device)
        gathered = [torch.empty_like(local) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, local)
        return [g.tolist() for g in gathered]
