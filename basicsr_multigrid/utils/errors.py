"""The error type for bad user input (options, data files): callers print its one-line message and exit."""


class OptionError(ValueError):
    """A one-line message that starts with the option key (YAML path) or the file it is about."""


class TrainingStopped(RuntimeError):
    """The run stopped itself on purpose (e.g. it diverged): a one-line reason; what was saved stays intact."""
    exit_status = 3
