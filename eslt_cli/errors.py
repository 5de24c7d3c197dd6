"""Errors raised by the eslt core.

The command layer turns an :class:`EsltError` into one line on stderr and its
``exit_code``: 2 for bad usage or bad input, 1 for a run that failed.
"""


class EsltError(Exception):
    """Base class: a message that says what went wrong and what to do."""

    exit_code = 2


class BadInput(EsltError):
    """The user's input (options, paths, checkpoints, data) cannot be used."""


class DataMissing(BadInput):
    """A dataset is not available locally; the message says how to get it."""


class RunFailed(EsltError):
    """A run started but could not finish (non-finite fitness, I/O failure)."""

    exit_code = 1


class Interrupted(EsltError):
    """SIGINT/SIGTERM stopped a run after saving its progress; re-running resumes it."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


class Busy(EsltError):
    """Another eslt process is writing the same output."""

    exit_code = 1


# The signal (SIGINT/SIGTERM) the command layer received, 0 if none. Its handler raises
# KeyboardInterrupt, but JAX may run Python code (garbage-collection callbacks) where such
# an exception is swallowed; writers call check_interrupted() so a swallowed signal still stops them.
SIGNAL = 0


def check_interrupted() -> None:
    """Raise KeyboardInterrupt if a signal arrived, even one whose exception was swallowed."""
    if SIGNAL:
        raise KeyboardInterrupt
