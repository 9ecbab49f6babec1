"""Run folders, atomic file writes and run manifests.

Everything a run writes goes through an atomic write: the bytes land in a temporary file in the same
folder, are flushed to disk, and only then renamed over the final name. A crash or ``kill -9`` at any
moment leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import datetime
import glob
import json
import os
import platform
import re
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, IO

from gantransfer.backend import user_cache_dir  # noqa: F401 (re-exported for the layers above)
from gantransfer.errors import DataError, RunFolderError

DEFAULT_OUTPUT_ROOT = Path("outputs")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Not every platform can open a directory.
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _default_file_mode() -> int:
    """The mode ``open()`` would give a new file: 0o666 less the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Writes a file atomically: ``write`` fills a temporary file that then replaces ``path``.

    Args:
        path: Final file name.
        write: Called with a binary file object opened on the temporary file.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.bin"
        >>> atomic_write(target, lambda f: f.write(b"abc"))
        >>> target.read_bytes()
        b'abc'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _default_file_mode())  # mkstemp makes 0o600 files; outputs are for sharing
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """Writes text atomically (UTF-8)."""
    atomic_write(Path(path), lambda handle: handle.write(text.encode("utf-8")))


def atomic_write_json(path: Path, data: Any) -> None:
    """Writes JSON atomically, indented for people to read."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def atomic_save(path: Path, save: Callable[[str], None]) -> None:
    """Atomically writes a file produced by a library that wants a file name (Keras, Matplotlib).

    ``save`` is called with a temporary name carrying the same suffix, which then replaces ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        save(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, _default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def default_run_name(command: str, dataset: str) -> str:
    """A new run name: ``<dataset>-<command>-<UTC timestamp>``, safe as a folder name."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(dataset).name or dataset).strip("_.") or "data"
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stem}-{command}-{stamp}"


def files_folder(out_dir: str | Path | None, command: str, dataset: str, files: tuple[str, ...],
                 *, overwrite: bool, what: str) -> Path:
    """The folder a command writes its named files into, checked before anything is computed.

    Args:
        out_dir: The folder asked for, or None for a new ``outputs/<dataset>-<command>-<time>``.
        command: The command's name, for the default folder.
        dataset: The dataset's name or path, for the default folder.
        files: The names the command writes.
        overwrite: Whether files of an earlier run there may be replaced.
        what: What those files are, for the error (``"pictures"``, ``"an attack's files"``).

    Raises:
        RunFolderError: If the folder holds any of ``files`` and ``overwrite`` is false.
    """
    folder = Path(out_dir) if out_dir is not None else (
        DEFAULT_OUTPUT_ROOT / default_run_name(command, dataset))
    if folder.exists() and not overwrite and any((folder / name).exists() for name in files):
        raise RunFolderError(f"{str(folder)!r} already holds {what}; pass --overwrite or another "
                             "--out-dir")
    return folder


def remove_earlier(folder: Path, names: tuple[str, ...], written: Any) -> None:
    """Deletes the files of ``names`` in ``folder`` that this command did not write (``written``:
    the paths it wrote), so an ``--overwrite`` leaves no earlier run's file beside this one's."""
    kept = {Path(path).name for path in written}
    for name in names:
        if name not in kept:
            (Path(folder) / name).unlink(missing_ok=True)


def check_run_dir(path: Path, *, resume: bool = False, overwrite: bool = False,
                  marker: str = "config.yaml") -> None:
    """Checks that a run folder may be used as asked, changing nothing on disk.

    Args:
        path: The run folder.
        resume: The folder must exist and hold ``marker``.
        overwrite: An existing folder may be replaced, if it looks like a run (holds ``marker``).
        marker: The file that shows a folder is a run folder.

    Raises:
        RunFolderError: If the folder exists and neither flag allows it, or is not a run folder.
    """
    path = Path(path)
    if resume and overwrite:
        raise RunFolderError("--resume and --overwrite contradict each other; pass only one")
    if resume:
        if not (path / marker).is_file():
            raise RunFolderError(f"cannot resume: {str(path)!r} is not a run folder (no {marker}); "
                                 "pass the folder of an earlier run with --output-dir")
        return
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"output path {str(path)!r} is a file; pass a folder with --output-dir")
    if path.exists() and any(path.iterdir()):
        if not overwrite:
            raise RunFolderError(f"run folder {str(path)!r} already exists; pass --resume to continue "
                                 "it, --overwrite to replace it, or another --output-dir")
        if not (path / marker).is_file():
            raise RunFolderError(f"refusing to overwrite {str(path)!r}: it is not empty and holds no "
                                 f"{marker}, so it does not look like a run folder")
        here = Path.cwd().resolve()
        if path.resolve() == here or path.resolve() in here.parents:
            raise RunFolderError(f"refusing to overwrite {str(path)!r}: it holds the current "
                                 "directory; pass a run's own folder with --output-dir")


# What atomic_write (.NAME.XXXXXXXX.tmp) and atomic_save (.STEM.XXXXXXXX.SUFFIX) leave behind
# when killed mid-write (both clean up after any exception); mkstemp's random part is 8 characters.
_PARTIAL_WRITE = re.compile(r"^\..+\.[a-z0-9_]{8}\.[A-Za-z0-9]+$")


def remove_partial_writes(folder: Path) -> list[Path]:
    """Deletes the temporary files of writes that a kill cut short, in ``folder`` and the folders
    in it (one level), and returns them.

    Example:
        >>> import tempfile, pathlib
        >>> run = pathlib.Path(tempfile.mkdtemp())
        >>> (run / ".generator.k2_x9abc.keras").write_bytes(b"half"); (run / ".gitkeep").touch()
        4
        >>> [p.name for p in remove_partial_writes(run)], sorted(p.name for p in run.iterdir())
        (['.generator.k2_x9abc.keras'], ['.gitkeep'])
    """
    folder = Path(folder)
    found = [path for place in (folder, *(p for p in folder.iterdir() if p.is_dir()))
             for path in place.iterdir() if path.is_file() and _PARTIAL_WRITE.match(path.name)]
    for path in found:
        path.unlink(missing_ok=True)
    return found


def _remove_abandoned_asides(path: Path) -> None:
    """Deletes what earlier ``--overwrite`` runs of ``path``, killed while deleting, moved aside
    (``.NAME.replaced-PID``), unless that process is still running."""
    for aside in path.parent.glob(f".{glob.escape(path.name)}.replaced-*"):
        pid = aside.name.rsplit("-", 1)[1]
        if aside.is_dir() and pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(aside, ignore_errors=True)


def _running(pid: int) -> bool:
    """Whether a process with this id exists (one this user may not signal counts)."""
    if pid == os.getpid():
        return False
    if os.name != "posix":  # os.kill(pid, 0) would end the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, but another user's
        pass
    return True


def prepare_run_dir(path: Path, *, resume: bool = False, overwrite: bool = False,
                    marker: str = "config.yaml") -> Path:
    """Creates (or reuses) a run folder after :func:`check_run_dir`, never silently replacing one.

    With ``overwrite``, an existing run folder is deleted first; with ``resume`` it is kept as is.

    Returns:
        The run folder path.
    """
    path = Path(path)
    check_run_dir(path, resume=resume, overwrite=overwrite, marker=marker)
    if resume:  # a run killed mid-write left temporary files; the resume writes them again
        remove_partial_writes(path)
    if overwrite:  # first: an abandoned aside may bear this process's id (PID 1 in a container)
        _remove_abandoned_asides(path)
    if not resume and overwrite and path.exists() and any(path.iterdir()):
        # Moved aside first: a kill while deleting leaves a hidden folder, not a half-deleted run
        # that neither --resume nor --overwrite would take.
        aside = path.with_name(f".{path.name}.replaced-{os.getpid()}")
        path.rename(aside)
        shutil.rmtree(aside)
    path.mkdir(parents=True, exist_ok=True)
    return path


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a run's results depend on."""
    versions = {"python": platform.python_version()}
    for name in ("gantransfer", "keras", "tensorflow", "numpy", "pillow", "scikit-learn"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def machine_description() -> dict[str, Any]:
    """The machine a run ran on, and how it used it: platform, CPU count, the backend, the
    accelerators it saw (and what they are), and the active runtime's precision, XLA setting,
    distribution and replicas (:mod:`gantransfer.runtime`)."""
    info: dict[str, Any] = {"platform": platform.platform(), "cpu_count": os.cpu_count()}
    try:
        import keras

        from gantransfer import backend, runtime

        info["backend"] = keras.config.backend()
        info["gpus"] = backend.accelerators()
        info["devices"] = backend.device_kinds()
        info["float32_math"] = backend.float32_math()
        info.update(runtime.current().describe())
    except Exception:  # The manifest must never fail a run.
        pass
    return info


def available_memory() -> int | None:
    """Bytes of memory this machine can give a process now (Linux's ``MemAvailable``, else the free
    physical pages); None where neither is known.

    Example:
        >>> available_memory() is None or available_memory() > 0
        True
    """
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def check_memory(needed: int, what: str, fix: str) -> None:
    """Refuses, with one line, work that needs more memory than the machine has available.

    Args:
        needed: Bytes the work needs.
        what: What needs them, e.g. ``"the linear probe on 48000 x 7168 features"``.
        fix: How to need less.

    Raises:
        DataError: ``needed`` exceeds what :func:`available_memory` reports.

    Example:
        >>> check_memory(1, "one byte", "nothing")
    """
    available = available_memory()
    if available is not None and needed > available:
        raise DataError(f"{what} needs about {_size(needed)} of memory and this machine has "
                        f"{_size(available)} available; {fix}")


def _size(count: int) -> str:
    """Bytes in the largest binary unit that keeps a number >= 1: ``'1.5 GiB'``, ``'12 KiB'``."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}" if count < 10 * scale else f"{count // scale} {unit}"
    return f"{count} bytes"
