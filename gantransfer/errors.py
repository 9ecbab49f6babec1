"""Errors that reach the user as one clear line.

Library code raises these; the CLI turns them into a one-line message and a non-zero exit status,
with no traceback. The message says what was wrong and how to fix it.
"""


class GantransferError(Exception):
    """Base class of every error the user can fix: bad input, bad config, bad data."""


class ConfigError(GantransferError, ValueError):
    """A config file or override names an unknown key, or a value of the wrong type or range."""


class DataError(GantransferError, ValueError):
    """A dataset cannot be loaded as asked: missing files, empty folders, bad labels, budgets."""


class RunFolderError(GantransferError):
    """A run folder is missing, incomplete, or exists where it must not be overwritten."""


class TrainingDiverged(GantransferError, RuntimeError):
    """Training produced NaN or inf losses; the last good checkpoint is kept."""
