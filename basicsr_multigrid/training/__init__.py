"""Running training and evaluation: the runner (`runner.py`), its preflight checks, learning rates, resume
states and run records, and the entry points' command-line handling (`cli.py`)."""
