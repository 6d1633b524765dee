"""BasicSR-style auto-import: importing a sub-package imports its `*_<kind>.py` files, which register classes."""
import importlib
import os
from os import path as osp


def import_submodules(package_name, package_file, suffix):
    """Import every module of the package whose file name ends with ``suffix`` (e.g. '_dataset.py')."""
    folder = osp.dirname(osp.abspath(package_file))
    names = sorted(name[:-3] for name in os.listdir(folder) if name.endswith(suffix))
    return [importlib.import_module(f'{package_name}.{name}') for name in names]
