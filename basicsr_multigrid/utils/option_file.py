"""Reading the files named on a command line (the `-opt` YAML, JSON inputs), with one-line errors."""
import json

import yaml

from basicsr_multigrid.utils.errors import OptionError


def option_path_from_argv(argv):
    if '-opt' not in argv or argv.index('-opt') + 1 >= len(argv):
        raise OptionError('-opt: option file missing on the command line')
    return argv[argv.index('-opt') + 1]


def read_option_file(path):
    """The option file as a dict; a missing file or a YAML syntax error is an OptionError of one line."""
    try:
        options = _parsed(path, '-opt', yaml.safe_load)
    except yaml.YAMLError as error:
        raise OptionError(f'{path}: invalid YAML: {" ".join(str(error).split())}') from None
    if not isinstance(options, dict):
        raise OptionError(f'{path}: expected a mapping of options, got {type(options).__name__}')
    return options


def read_json_file(path, what):
    """The JSON file `path` that the command-line argument `what` names; a missing file or invalid JSON is an
    OptionError of one line naming both."""
    try:
        return _parsed(path, what, json.load)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:  # not ValueError: OptionError is one
        raise OptionError(f'{what}: {path}: invalid JSON: {error}') from None


def _parsed(path, what, parse):
    """`parse` of the open file; a file that cannot be read is an OptionError of one line naming `what`."""
    try:
        with open(path) as f:
            return parse(f)
    except OSError as error:
        raise OptionError(f'{what}: cannot read {path}: {error.strerror}') from None
