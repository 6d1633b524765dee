"""Imports point down only: no module of the package imports one of a higher layer (README, Architecture)."""
import ast
import os
from os import path as osp

from tests.conftest import REPO_ROOT

PACKAGE = osp.join(REPO_ROOT, 'basicsr_multigrid')
LAYER_OF = {  # top-level module or sub-package of basicsr_multigrid -> layer (higher may import lower)
    'version': 0, 'utils': 0,
    'archs': 1, 'data': 1, 'losses': 1, 'optim': 1,
    'compat': 2, 'multigrid': 2, 'pruning': 2, 'inference': 2,
    'models': 3,
    'hooks': 4,
    'training': 5,
    'train': 6, 'test': 6, '__init__': 7,
}


def package_imports(path):
    """Top-level parts (`models`, `utils`, ...) of every basicsr_multigrid module imported by the file at `path`,
    at module level or inside functions."""
    with open(path) as f:
        tree = ast.parse(f.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith('basicsr_multigrid'):
            parts = node.module.split('.')[1:]
            found.update([parts[0]] if parts else [alias.name for alias in node.names])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split('.')[1] for alias in node.names
                         if alias.name.startswith('basicsr_multigrid.'))
    return found


def owner(path):
    relative = osp.relpath(path, PACKAGE).split(os.sep)
    return relative[0] if len(relative) > 1 else relative[0][:-3]


def test_no_module_imports_a_higher_layer_or_a_sibling_package():
    problems = []
    for root, _, files in os.walk(PACKAGE):
        for name in sorted(files):
            if not name.endswith('.py'):
                continue
            path = osp.join(root, name)
            mine = owner(path)
            for imported in package_imports(path) - {mine}:
                if LAYER_OF[imported] >= LAYER_OF[mine]:
                    problems.append(f'{osp.relpath(path, REPO_ROOT)} ({mine}) imports {imported}')
    assert not problems, problems


def test_the_check_sees_imports_inside_functions(tmp_path):
    module = tmp_path / 'x.py'
    module.write_text('def f():\n    from basicsr_multigrid.models.teacher import load_teacher\n'
                      'import basicsr_multigrid.training.runner\nfrom basicsr_multigrid import hooks\n')
    assert package_imports(str(module)) == {'models', 'training', 'hooks'}
