"""Imports point down only: no module of the package imports one of a higher layer (README, Architecture); and no
test module imports another (shared helpers live in conftest.py)."""
import ast
import os
from os import path as osp

import pytest

from tests.conftest import REPO_ROOT

PACKAGE = osp.join(REPO_ROOT, 'basicsr_multigrid')
TESTS = osp.join(REPO_ROOT, 'tests')
LAYER_OF = {  # top-level module or sub-package of basicsr_multigrid -> layer (higher may import lower)
    'version': 0, 'utils': 0,
    'archs': 1, 'data': 1, 'losses': 1, 'optim': 1,
    'compat': 2, 'multigrid': 2, 'pruning': 2, 'inference': 2,
    'models': 3,
    'hooks': 4,
    'training': 5,
    'benchmarks': 6,
    'train': 7, 'test': 7, '__init__': 8,
}


def imported_names(path):
    """Every module the file at `path` imports, at module level or inside functions: `a.b` for `import a.b`, `a.b`
    and `a.b.c` for `from a.b import c` (c may be a module); a relative import inside tests/ as `tests.<name>`."""
    with open(path) as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = (('tests.' if node.level else '') + (node.module or '')).rstrip('.')
            yield module
            yield from (f'{module}.{alias.name}' for alias in node.names)


def package_imports(path):
    """Top-level parts (`models`, `utils`, ...) of every basicsr_multigrid module imported by the file at `path`."""
    return {name.split('.')[1] for name in imported_names(path) if name.startswith('basicsr_multigrid.')}


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


def files_of_tests_importing(imports_of):
    """'tests/<file> imports <names>' for every Python file of tests/ whose `imports_of(path)` is not empty."""
    found = {name: imports_of(osp.join(TESTS, name)) for name in sorted(os.listdir(TESTS)) if name.endswith('.py')}
    return [f'tests/{name} imports {", ".join(sorted(names))}' for name, names in found.items() if names]


def imported_test_modules(path):
    """The `tests.test_*` modules the file at `path` imports."""
    return {'.'.join(name.split('.')[:2]) for name in imported_names(path) if name.startswith('tests.test_')}


def test_no_test_module_imports_another_test_module():
    """A helper two test modules share lives in conftest.py: it exists once, and running (or breaking) one test
    module never depends on another."""
    problems = files_of_tests_importing(imported_test_modules)
    assert not problems, problems


LOADERS_BY_PATH = {'spec_from_file_location', 'run_path'}  # importlib.util, runpy: a script loaded as a module


def imported_tools(path):
    """The tools/*.py scripts the file at `path` imports as modules, and any module it loads from a file path."""
    tools = {name[:-3] for name in os.listdir(osp.join(REPO_ROOT, 'tools')) if name.endswith('.py')}
    with open(path) as f:
        calls = [node.func for node in ast.walk(ast.parse(f.read())) if isinstance(node, ast.Call)]
    loaders = {getattr(call, 'attr', getattr(call, 'id', None)) for call in calls} & LOADERS_BY_PATH
    return ({name.split('.')[0] for name in imported_names(path)} & tools) | loaders


def test_tests_import_the_package_never_a_tool():
    """Tools are thin command lines over the package: tests import what they test from the package, and run a
    tool only as users do, in a process of its own (conftest.run_tool)."""
    problems = files_of_tests_importing(imported_tools)
    assert not problems, problems


@pytest.mark.parametrize('check, source, expected', [
    (package_imports, 'def f():\n    from basicsr_multigrid.models.teacher import load_teacher\n'
     'import basicsr_multigrid.training.runner\nfrom basicsr_multigrid import hooks\n',
     {'models', 'training', 'hooks'}),
    (imported_test_modules, 'from tests.conftest import REPO_ROOT\nfrom tests.test_a import A\n'
     'def f():\n    import tests.test_b\n    from . import conftest, test_c\n',
     {'tests.test_a', 'tests.test_b', 'tests.test_c'}),
    (imported_tools, 'import json\nfrom basicsr_multigrid.inference import compare_frames\n'
     'def f():\n    import benchmark_kd\n    from prune_widths import main\n'
     'spec = importlib.util.spec_from_file_location("x", "tools/x.py")\n',
     {'benchmark_kd', 'prune_widths', 'spec_from_file_location'}),
])
def test_each_check_sees_imports_in_every_form(tmp_path, check, source, expected):
    module = tmp_path / 'test_x.py'
    module.write_text(source)
    assert check(str(module)) == expected
