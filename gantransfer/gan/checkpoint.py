"""Whole-state DCGAN checkpoints, written atomically.

A checkpoint holds everything a resumed run needs to continue exactly where it stopped: both
networks' weights (BatchNorm statistics included), both optimizers' variables, the model's noise seed
state, the fixed noise of the sample grids and the number of epochs done. Keras's own
``BackupAndRestore`` covers one optimizer and no extra state, so a DCGAN needs this.

Each checkpoint is one ``.npz`` file, ``epoch_NNN.npz``, written through
:func:`gantransfer.runs.atomic_write`: a ``kill -9`` at any moment leaves every finished checkpoint
readable, and the newest complete one is the one :func:`latest_checkpoint` returns.
"""

from __future__ import annotations

import json
import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gantransfer.errors import RunFolderError, TrainingDiverged
from gantransfer.runs import atomic_write

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^epoch_(\d{3,})\.npz$")
_PARTIAL = re.compile(r"^\.epoch_(\d{3,})\.npz\..*\.tmp$")  # left by a write that was killed
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """The contents of one checkpoint file."""

    epoch: int
    fixed_noise: np.ndarray
    variables: dict[str, list[np.ndarray]]
    paths: dict[str, list[str]]
    settings: dict[str, Any] | None = None  # what defines the run; None in 0.1 checkpoints


# Groups a checkpoint may lack, and a model may lack: a resume restores them where both have them.
_OPTIONAL = ("loss_scale",)


def _inner(optimizer):
    """The optimizer that holds the training state: under float16 loss scaling, the wrapped one."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def _groups(gan) -> dict[str, list]:
    """The state by group. The optimizers' groups hold their own variables (Adam's moments and step)
    in every precision, so a run can resume in another precision; float16's loss scales, which
    only that precision has, are a group of their own."""
    groups = {
        "generator": list(gan.generator.variables),
        "discriminator": list(gan.discriminator.variables),
        "g_optimizer": list(_inner(gan.g_optimizer).variables),
        "d_optimizer": list(_inner(gan.d_optimizer).variables),
        "seed": [gan.seed_generator.state],
    }
    if getattr(gan, "rotation_head", None) is not None:
        groups["rotation_head"] = list(gan.rotation_head.variables)
    scaling = []
    for optimizer in (gan.d_optimizer, gan.g_optimizer):
        own = {id(v) for v in _inner(optimizer).variables}
        scaling += [v for v in optimizer.variables if id(v) not in own]
    if scaling:
        groups["loss_scale"] = scaling
    return groups


def non_finite_variables(gan) -> list[str]:
    """The variables of a DCGAN's whole state (both networks, BatchNorm statistics included, both
    optimizers) that hold a NaN or an infinity, by path; empty when all is finite.

    Losses can stay finite while a BatchNorm moving variance overflows: only the weights tell.
    """
    return [variable.path for variables in _groups(gan).values() for variable in variables
            if not np.isfinite(np.asarray(variable)).all()]


def checkpoint_path(folder: Path, epoch: int) -> Path:
    """The file name of the checkpoint taken after ``epoch`` epochs."""
    return Path(folder) / f"epoch_{epoch:03d}.npz"


def save_checkpoint(gan, folder: Path, epoch: int, fixed_noise: np.ndarray,
                    settings: dict[str, Any] | None = None) -> Path:
    """Writes the whole training state after ``epoch`` epochs, atomically.

    Args:
        gan: A compiled :class:`~gantransfer.gan.dcgan.DCGAN` whose optimizers are built.
        folder: The checkpoints folder.
        epoch: Epochs completed.
        fixed_noise: The noise the sample grids are drawn from.
        settings: The settings that define the run (JSON-able), which a resume must not change.

    Returns:
        The checkpoint's path.

    Raises:
        TrainingDiverged: If any variable is NaN or infinite: such a state is never written.
    """
    bad = non_finite_variables(gan)
    if bad:
        raise TrainingDiverged(f"not saving a checkpoint after epoch {epoch}: {len(bad)} variables "
                               f"hold NaN or inf ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''})")
    arrays: dict[str, np.ndarray] = {"epoch": np.asarray(epoch), "fixed_noise": np.asarray(fixed_noise)}
    paths: dict[str, list[str]] = {}
    for group, variables in _groups(gan).items():
        paths[group] = [v.path for v in variables]
        for i, variable in enumerate(variables):
            arrays[f"{group}/{i:04d}"] = np.asarray(variable)
    arrays["meta"] = np.asarray(json.dumps({"format": FORMAT_VERSION, "paths": paths,
                                            "settings": settings}))
    path = checkpoint_path(folder, epoch)
    atomic_write(path, lambda handle: np.savez(handle, **arrays))
    return path


def list_checkpoints(folder: Path) -> list[Path]:
    """Finished checkpoints in ``folder``, oldest first (temporary files are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def read_checkpoint(path: Path) -> Checkpoint:
    """Reads one checkpoint file.

    Raises:
        RunFolderError: If the file is not a readable gantransfer checkpoint.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            variables = {group: [data[f"{group}/{i:04d}"] for i in range(len(names))]
                         for group, names in meta["paths"].items()}
            return Checkpoint(epoch=int(data["epoch"]), fixed_noise=np.array(data["fixed_noise"]),
                              variables=variables, paths=meta["paths"],
                              settings=meta.get("settings"))
    except (OSError, EOFError, KeyError, TypeError, ValueError, zipfile.BadZipFile,
            json.JSONDecodeError) as error:  # EOFError: an empty file
        raise RunFolderError(f"checkpoint {str(path)!r} is unreadable ({error}); delete it to "
                             "resume from the one before") from None


def latest_checkpoint(folder: Path) -> Checkpoint | None:
    """The newest readable checkpoint, skipping (with a warning) any that cannot be read."""
    for path in reversed(list_checkpoints(folder)):
        try:
            return read_checkpoint(path)
        except RunFolderError as error:
            logger.warning("%s", error)
    return None


def restore_checkpoint(gan, checkpoint: Checkpoint) -> None:
    """Assigns a checkpoint's values to the model, its optimizers and its seed, checking shapes.

    Raises:
        RunFolderError: If the checkpoint was made by a model of another architecture.
    """
    gan.build_optimizers()
    for group, variables in _groups(gan).items():
        if group in _OPTIONAL and group not in checkpoint.variables:
            continue  # e.g. a float32 run resumed under float16: its loss scales start afresh
        saved = checkpoint.variables.get(group, [])
        if len(saved) != len(variables):
            raise RunFolderError(
                f"checkpoint does not match the model: {group} has {len(variables)} variables, the "
                f"checkpoint {len(saved)}; resume with the run's own config.yaml")
        for variable, value, path in zip(variables, saved, checkpoint.paths[group]):
            if tuple(variable.shape) != tuple(value.shape):
                raise RunFolderError(
                    f"checkpoint does not match the model: {path} has shape {tuple(value.shape)} in "
                    f"the checkpoint and {tuple(variable.shape)} in the model; resume with the run's "
                    "own config.yaml")
            variable.assign(value)


def prune_checkpoints(folder: Path, keep: int) -> None:
    """Deletes all but the newest ``keep`` checkpoints (``keep=0`` keeps every one) and leftovers
    of writes that were killed."""
    folder = Path(folder)
    if folder.is_dir():
        for path in folder.iterdir():
            if _PARTIAL.match(path.name):
                path.unlink(missing_ok=True)
    if keep <= 0:
        return
    for path in list_checkpoints(folder)[:-keep]:
        path.unlink(missing_ok=True)
