"""Reading the `-opt` YAML named on a command line, with one-line errors."""
import yaml

from basicsr_multigrid.utils.errors import OptionError


def option_path_from_argv(argv):
    if '-opt' not in argv or argv.index('-opt') + 1 >= len(argv):
        raise OptionError('-opt: option file missing on the command line')
    return argv[argv.index('-opt') + 1]


def read_option_file(path):
    """The option file as a dict; a missing file or a YAML syntax error is an OptionError of one line."""
    try:
        with open(path) as f:
            options = yaml.safe_load(f)
    except OSError as error:
        raise OptionError(f'-opt: cannot read {path}: {error.strerror}') from None
    except yaml.YAMLError as error:
        raise OptionError(f'{path}: invalid YAML: {" ".join(str(error).split())}') from None
    if not isinstance(options, dict):
        raise OptionError(f'{path}: expected a mapping of options, got {type(options).__name__}')
    return options
