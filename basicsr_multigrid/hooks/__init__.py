"""mmengine hooks of a training run (`train.hooks`): each observes named events of the runner (`before_train_iter`,
`after_train_iter`, `after_val`, `after_run`) and may give an LR factor (`lr_factor(runner)`) that the runner
multiplies into the scheduled LR. Auto-imports every `*_hook.py` here."""
from basicsr_multigrid.hooks.registry import HOOKS
from basicsr_multigrid.utils.errors import OptionError
from basicsr_multigrid.utils.registration import import_submodules

import_submodules(__name__, __file__, '_hook.py')


def build_hooks(hook_options):
    """Hooks from `train.hooks` (a list of `{type: Name, ...}`), ordered by mmengine priority."""
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
    return sort_by_priority(hooks)


def sort_by_priority(hooks):
    """In the order mmengine runs hooks: by `priority`, highest first."""
    from mmengine.runner import get_priority
    return sorted(hooks, key=lambda hook: get_priority(hook.priority))


__all__ = ['HOOKS', 'build_hooks', 'sort_by_priority']
