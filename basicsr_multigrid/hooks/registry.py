"""The mmengine registry of this package's training hooks (`train.hooks: [{type: ..., ...}]` in YAML)."""
from mmengine.registry import Registry

HOOKS = Registry('basicsr_multigrid hook', scope='basicsr_multigrid', locations=['basicsr_multigrid.hooks'])
