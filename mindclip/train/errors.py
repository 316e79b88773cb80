"""The two ways a run ends in error: bad input (refused before training) and a run that fails.

`tools/train.py` prints either as one line: `RunError` (and ConfigError, CheckpointError) exit with
status 2, `RunFailed` with status 1.
"""


class RunError(ValueError):
    """Bad input for a run (a key, file or flag); the message names it. Nothing has been trained."""


class RunFailed(RuntimeError):
    """The run started but cannot go on (e.g. too many skipped steps); the message says why."""
