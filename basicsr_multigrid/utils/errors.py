"""Error types the entry points turn into one line on stderr and a documented exit status:
2 bad input (OptionError), 3 the run stopped itself (divergence, a file that could not be written),
4 preempted by a signal after writing a checkpoint (training/preemption.py), 5 another rank of the run stopped."""


class OptionError(ValueError):
    """A one-line message that starts with the option key (YAML path) or the file it is about."""


class TrainingStopped(RuntimeError):
    """The run stopped itself on purpose (e.g. it diverged): a one-line reason; what was saved stays intact."""
    exit_status = 3
    label = 'error'


class DiskWriteError(TrainingStopped):
    """A checkpoint or run record could not be written (full disk, quota, I/O error); its previous version is intact."""


class RankStopped(TrainingStopped):
    """Another process of a distributed run stopped; this one stops too instead of waiting for it."""
    exit_status = 5
