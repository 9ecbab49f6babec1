"""Run folders and atomic writes."""

import os
import shutil
import subprocess
import sys
import stat
from pathlib import Path

import pytest

from gantransfer.errors import RunFolderError
from gantransfer.runs import (atomic_save, atomic_write_json, atomic_write_text, check_run_dir,
                              default_run_name, package_versions, prepare_run_dir)


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_json(target, {"ok": 1})

    def explode(name):
        with open(name, "w") as handle:
            handle.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_save(target, explode)
    assert target.read_text().strip().startswith("{") and '"ok": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_run_folder_rules(tmp_path):
    run = prepare_run_dir(tmp_path / "run")
    (run / "config.yaml").write_text("{}")
    with pytest.raises(RunFolderError, match="already exists"):
        check_run_dir(run)
    check_run_dir(run, resume=True)
    prepare_run_dir(run, overwrite=True)
    assert run.is_dir() and not any(run.iterdir())
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # nothing left aside
    # An earlier --overwrite killed while deleting left its aside folder: the next one sweeps it,
    # but not one that a running process is still deleting, nor another run's. One that bears
    # this process's id (a container's PID 1 every time) goes before the run is moved aside.
    (run / "config.yaml").write_text("{}")
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    for name in (f".run.replaced-{dead.pid}", f".run.replaced-{os.getppid()}",
                 f".other.replaced-{dead.pid}", f".run.replaced-{os.getpid()}"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "generator.keras").write_text("old")
    prepare_run_dir(run, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".other.replaced-%d" % dead.pid, ".run.replaced-%d" % os.getppid(), "run"])
    for name in (f".run.replaced-{os.getppid()}", f".other.replaced-{dead.pid}"):
        shutil.rmtree(tmp_path / name)
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="is a file"):
        check_run_dir(tmp_path / "file")


def test_default_run_name_is_a_safe_folder_name():
    name = default_run_name("train-gan", "/data/my images/")
    assert name.startswith("my_images-train-gan-") and "/" not in name


def test_package_versions_name_the_stack():
    versions = package_versions()
    assert versions["keras"].startswith("3.") and "tensorflow" in versions


def test_overwrite_never_deletes_the_current_directory_or_one_above_it(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "config.yaml").write_text("data:\n  dataset: digits\n")  # the user's own
    (project / "src/work.py").write_text("mine")
    monkeypatch.chdir(project / "src")
    for target in (project, Path("..")):
        with pytest.raises(RunFolderError, match="it holds the current directory"):
            prepare_run_dir(target, overwrite=True)
    assert (project / "src/work.py").read_text() == "mine"


def test_a_resume_sweeps_the_temporary_files_of_writes_a_kill_cut_short(tmp_path):
    run = prepare_run_dir(tmp_path / "run")
    (run / "config.yaml").write_text("{}")
    (run / "samples").mkdir()
    atomic_write_text(run / "history.csv", "epoch\n0\n")
    left = [run / ".run.json.ab3_9xyz.tmp", run / ".generator.q1w2e3r4.keras",
            run / "samples" / ".epoch_002.png.zz99yy88.tmp"]
    for path in left:
        path.write_bytes(b"half a file")
    (run / ".gitkeep").touch()
    prepare_run_dir(run, resume=True)
    assert not any(path.exists() for path in left)
    assert sorted(p.name for p in run.iterdir()) == [".gitkeep", "config.yaml", "history.csv",
                                                     "samples"]
