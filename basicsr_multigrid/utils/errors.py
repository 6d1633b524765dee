"""The error type for bad user input (options, data files): callers print its one-line message and exit."""


class OptionError(ValueError):
    """A one-line message that starts with the option key (YAML path) or the file it is about."""
