"""mmengine hooks called at BasicSR's iteration points; auto-imports every `*_hook.py` here."""
from basicsr_multigrid.hooks.registry import HOOKS
from basicsr_multigrid.utils.errors import OptionError
from basicsr_multigrid.utils.registration import import_submodules

import_submodules(__name__, __file__, '_hook.py')


def build_hooks(hook_options):
    """Hooks from `train.hooks` (a list of `{type: Name, ...}`), ordered by mmengine priority."""
    from mmengine.runner import get_priority
    hooks = []
    for i, hook_opt in enumerate(hook_options or []):
        if not isinstance(hook_opt, dict) or 'type' not in hook_opt:
            raise OptionError(f'train.hooks[{i}]: expected a mapping with a "type" key, got {hook_opt!r}')
        if HOOKS.get(hook_opt['type']) is None:
            raise OptionError(f"train.hooks[{i}].type: unknown hook {hook_opt['type']!r}; "
                             f"known: {', '.join(sorted(HOOKS.module_dict))}")
        try:
            hooks.append(HOOKS.build(dict(hook_opt)))
        except TypeError as error:
            raise OptionError(f"train.hooks[{i}] ({hook_opt['type']}): {error}") from None
    return sorted(hooks, key=lambda hook: get_priority(hook.priority))


__all__ = ['HOOKS', 'build_hooks']
