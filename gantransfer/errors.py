"""Errors that reach the user as one clear line.

Library code raises these; the CLI turns them into a one-line message and a non-zero exit status,
with no traceback. The message says what was wrong and how to fix it.
"""


class GantransferError(Exception):
    """Base class of every error the user can fix: bad input, bad config, bad data.

    Example:
        >>> try:
        ...     raise DataError("unknown dataset 'x': expected one of digits, mnist")
        ... except GantransferError as error:
        ...     print(error)
        unknown dataset 'x': expected one of digits, mnist
    """


class ConfigError(GantransferError, ValueError):
    """A config file or override names an unknown key, or a value of the wrong type or range.

    Example:
        >>> from gantransfer.config import load_config
        >>> try:
        ...     load_config(None, ["train.epochs=0"])
        ... except ConfigError as error:
        ...     print(error)
        train.epochs: received 0, expected an integer >= 1
    """


class DataError(GantransferError, ValueError):
    """A dataset cannot be loaded as asked: missing files, empty folders, bad labels, budgets.

    Example:
        >>> from gantransfer.data import load_dataset
        >>> try:
        ...     load_dataset("digits", labels_per_class=1000)
        ... except DataError as error:
        ...     print(str(error)[:40])
        class '8' has only 125 training exa...
    """


class RunFolderError(GantransferError):
    """A run folder is missing, incomplete, or exists where it must not be overwritten.

    Example:
        >>> from gantransfer.runs import check_run_dir
        >>> try:
        ...     check_run_dir("/no/such/run", resume=True)
        ... except RunFolderError as error:
        ...     print(str(error)[:30])
        cannot resume: '/no/such/run' ...
    """


class TrainingDiverged(GantransferError, RuntimeError):
    """Training produced NaN or inf losses; the last good checkpoint is kept.

    Example:
        >>> import gantransfer as gt
        >>> try:  # doctest: +SKIP
        ...     gt.train_gan(config, "outputs/run")
        ... except gt.TrainingDiverged as error:
        ...     print(error)  # names the epoch and batch, and where the last good checkpoint is
    """


class ClusterError(GantransferError, RuntimeError):
    """Training across machines (``train.distribute=multi-worker``) stopped: a worker refused to
    start, stopped, or lost touch with the others. The chief's checkpoints are kept.

    Example:
        >>> import gantransfer as gt
        >>> try:  # doctest: +SKIP
        ...     gt.train_gan(config, "/shared/run")
        ... except gt.ClusterError as error:
        ...     print(error)  # says which worker to look at, and how to go on
    """
