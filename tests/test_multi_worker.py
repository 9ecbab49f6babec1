"""train-gan across machines (train.distribute=multi-worker): two worker processes on localhost.

Both processes run ``gantransfer train-gan`` with a ``TF_CONFIG`` naming the two of them on loopback
ports, as two machines would; TensorFlow's MultiWorkerMirroredStrategy joins them. Only the chief
(worker 0) writes the run folder; the other trains alongside it in a scratch folder it deletes.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gantransfer.cli import cli
from gantransfer.config import load_config
from gantransfer.errors import ConfigError
from gantransfer.runtime import Cluster, Runtime, cluster_from_tf_config

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--dataset", "digits", "--set", "data.image_size=16", "--set", "train.batch_size=64",
        "--set", "gan.width=0.125", "--set", "gan.latent_dim=8", "--set", "train.sample_images=4"]


def _tf_config(ports: list[int], index: int) -> str:
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _start_workers(tmp_path: Path, args: list[str]) -> list[subprocess.Popen]:
    """Starts ``gantransfer ARGS`` as worker 0 (the chief) and worker 1 of one cluster.

    Each worker's temporary files go to its own folder under ``tmp_path``, to be inspected after.
    """
    ports = _free_ports(2)
    processes = []
    for index in range(2):
        scratch = tmp_path / f"tmp{index}"
        scratch.mkdir(exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "tensorflow",
               "TF_CONFIG": _tf_config(ports, index), "TMPDIR": str(scratch)}
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "gantransfer", *args], cwd=tmp_path, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return processes


def _finish(processes: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    """Each worker's exit code, stdout and stderr; a worker still running after 5 minutes fails."""
    try:
        outputs = [process.communicate(timeout=300) for process in processes]
    finally:
        for process in processes:
            process.kill()
    return [(process.returncode, out, err) for process, (out, err) in zip(processes, outputs)]


def _two_workers(tmp_path: Path, args: list[str]) -> list[tuple[int, str, str]]:
    """Runs ``gantransfer train-gan ARGS`` as worker 0 and worker 1; their exit codes and output."""
    return _finish(_start_workers(tmp_path, ["train-gan", *args]))


def _history(run_dir: Path) -> list[dict[str, float]]:
    lines = (run_dir / "history.csv").read_text().splitlines()
    keys = lines[0].split(",")
    return [dict(zip(keys, map(float, line.split(",")))) for line in lines[1:]]


@pytest.mark.slow
@pytest.mark.tensorflow_only("MultiWorkerMirroredStrategy is tf.distribute's")
def test_two_workers_train_resume_and_only_the_chief_writes(tmp_path):
    run_dir = tmp_path / "run"
    args = [*TINY, "--epochs", "1", "--output-dir", "run", "--quiet", "--distribute", "multi-worker",
            "--set", "train.probe_every=1", "--set", "train.probe_images=200",
            "--set", "train.metrics_every=1", "--set", "train.metrics_images=200"]
    (chief_rc, chief_out, chief_err), (rc, out, err) = _two_workers(tmp_path, args)
    assert chief_rc == 0, chief_err[-3000:]
    assert rc == 0, err[-3000:]
    assert f"run folder: {Path('run')}" in chief_out
    assert f"trained alongside the chief, which wrote the run folder: {Path('run')}" in out
    manifest = json.loads((run_dir / "run.json").read_text())
    machine = manifest["machine"]
    assert (machine["distribute"], machine["replicas"], machine["workers"]) == ("multi-worker", 2, 2)
    assert len(_history(run_dir)) == 1
    assert (run_dir / "samples" / "epoch_001.png").is_file()
    # The other worker wrote nothing that outlives it, and nothing in the chief's folder.
    assert list((tmp_path / "tmp1").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "tmp0", "tmp1"]

    # One global batch per step, split across the workers, each drawing its share of the global
    # batch's noise, BatchNorm statistics synchronized: the same training as on one device, to the
    # float error of summing the gradients in another order; and the same FID, KID and probe.
    # One device in a fresh process too, as each worker is: in this pytest worker an earlier test may
    # have turned on TensorFlow's op determinism, which lasts for the process (FID 171.10 here
    # against 174.14 in a fresh process, once).
    subprocess.run([sys.executable, "-m", "gantransfer", "train-gan", "--config",
                    str(run_dir / "config.yaml"), "--set", "train.distribute=none", "--quiet",
                    "--output-dir", str(tmp_path / "alone")], check=True, cwd=tmp_path,
                   capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT),
                                             "KERAS_BACKEND": "tensorflow"})
    alone = _history(tmp_path / "alone")[0]
    for key in ("d_loss", "g_loss", "d_real", "d_fake", "fid", "kid", "probe_accuracy"):
        assert _history(run_dir)[0][key] == pytest.approx(alone[key], rel=2e-3), key

    # The chief refuses a second run into its folder; the other worker learns of it and stops too,
    # instead of waiting for the chief at its first step.
    (chief_rc, _, chief_err), (rc, _, err) = _two_workers(tmp_path, args)
    assert chief_rc == 1 and "run folder 'run' already exists" in chief_err.splitlines()[-1]
    assert rc == 1 and "another worker of the cluster refused to start" in err.splitlines()[-1]
    assert "Traceback" not in chief_err + err
    assert len(_history(run_dir)) == 1

    # Both workers resume from the chief's checkpoint: the other reads it from the shared folder.
    args = ["--epochs", "2", "--output-dir", "run", "--resume", "--quiet"]
    (chief_rc, _, chief_err), (rc, out, err) = _two_workers(tmp_path, args)
    assert chief_rc == 0, chief_err[-3000:]
    assert rc == 0, err[-3000:]
    assert [row["epoch"] for row in _history(run_dir)] == [0.0, 1.0]
    manifest = json.loads((run_dir / "run.json").read_text())
    assert [session["epochs"] for session in manifest["sessions"]] == [[1, 1], [2, 2]]
    assert (run_dir / "checkpoints" / "epoch_002.npz").is_file()
    assert list((tmp_path / "tmp1").iterdir()) == []


@pytest.mark.slow
@pytest.mark.tensorflow_only("MultiWorkerMirroredStrategy is tf.distribute's")
def test_a_worker_lost_mid_run_stops_the_other_in_one_line_and_resume_recovers(tmp_path):
    run_dir = tmp_path / "run"
    args = ["train-gan", *TINY, "--epochs", "30", "--output-dir", "run", "--quiet",
            "--distribute", "multi-worker", "--set", "train.keep_checkpoints=0"]
    chief, worker = _start_workers(tmp_path, args)
    deadline = time.monotonic() + 240
    while not (run_dir / "checkpoints" / "epoch_002.npz").is_file():  # the chief is lost mid-run
        assert chief.poll() is None and time.monotonic() < deadline, chief.communicate()[1][-3000:]
        time.sleep(0.2)
    chief.kill()
    (_, _, _), (rc, _, err) = _finish([chief, worker])
    assert rc == 1, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert "worker 1 stopped: another worker stopped or lost touch" in last, err[-3000:]
    assert "start every worker again with --resume" in last and "Traceback" not in err
    kept = max(int(path.stem.split("_")[1]) for path in (run_dir / "checkpoints").glob("*.npz"))

    (chief_rc, _, chief_err), (rc, _, err) = _two_workers(
        tmp_path, ["--output-dir", "run", "--resume", "--epochs", str(kept + 1), "--quiet"])
    assert chief_rc == 0, chief_err[-3000:]
    assert rc == 0, err[-3000:]
    assert [row["epoch"] for row in _history(run_dir)] == [float(e) for e in range(kept + 1)]


@pytest.mark.slow
@pytest.mark.tensorflow_only("MultiWorkerMirroredStrategy is tf.distribute's")
def test_compare_trains_the_gan_across_workers_and_the_classifiers_on_the_chief(tmp_path):
    run_dir = tmp_path / "run"
    args = ["compare", *TINY, "--epochs", "1", "--strategies", "scratch,gan-frozen",
            "--labels-per-class", "10", "--seeds", "1", "--set", "transfer.max_epochs=2",
            "--set", "transfer.gan_metrics=false", "--output-dir", "run", "--quiet",
            "--distribute", "multi-worker"]
    (chief_rc, chief_out, chief_err), (rc, out, err) = _finish(_start_workers(tmp_path, args))
    assert chief_rc == 0, chief_err[-3000:]
    assert rc == 0, err[-3000:]
    assert "2 models trained" in chief_out
    assert "trained the GAN alongside the chief, which trains the classifiers" in out
    gan_machine = json.loads((run_dir / "gan" / "run.json").read_text())["machine"]
    assert (gan_machine["distribute"], gan_machine["workers"]) == ("multi-worker", 2)
    machine = json.loads((run_dir / "run.json").read_text())["machine"]
    assert (machine["distribute"], machine["workers"]) == ("none", 1)
    results = json.loads((run_dir / "results.json").read_text())["results"]
    assert sorted(r["strategy"] for r in results) == ["gan-frozen", "scratch"]
    assert list((tmp_path / "tmp1").iterdir()) == []


@pytest.mark.slow
@pytest.mark.tensorflow_only("MultiWorkerMirroredStrategy is tf.distribute's")
def test_compare_with_a_gan_per_seed_trains_each_gan_across_workers(tmp_path):
    run_dir = tmp_path / "run"
    args = ["compare", *TINY, "--epochs", "1", "--strategies", "gan-frozen",
            "--labels-per-class", "10", "--seeds", "2", "--gan-per-seed",
            "--set", "transfer.max_epochs=2", "--set", "transfer.gan_metrics=false",
            "--output-dir", "run", "--quiet", "--distribute", "multi-worker"]
    (chief_rc, chief_out, chief_err), (rc, out, err) = _finish(_start_workers(tmp_path, args))
    assert chief_rc == 0, chief_err[-3000:]
    assert rc == 0, err[-3000:]
    assert "2 models trained" in chief_out
    runs = {name: json.loads((run_dir / name / "run.json").read_text())
            for name in ("gan", "gan-seed-1")}
    for manifest in runs.values():  # both GANs trained across the two machines
        assert (manifest["machine"]["distribute"], manifest["machine"]["workers"]) == (
            "multi-worker", 2)
    assert [load_config(str(run_dir / name / "config.yaml")).train.seed
            for name in ("gan", "gan-seed-1")] == [0, 1]  # each seed's GAN at its own seed
    results = json.loads((run_dir / "results.json").read_text())["results"]
    assert sorted(r["seed"] for r in results) == [0, 1]
    assert list((tmp_path / "tmp1").iterdir()) == []  # the other worker left nothing behind


@pytest.mark.parametrize("tf_config, expected", [
    (None, "train.distribute=multi-worker needs TF_CONFIG"),
    ("{not json", "TF_CONFIG is not JSON"),
    ('{"cluster": {"worker": ["a:1"]}}', 'TF_CONFIG needs a "cluster" of address lists and a "task"'),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',
     "is not a chief or worker of its cluster"),
    ('{"cluster": {"worker": "a:1"}, "task": {"type": "worker", "index": 0}}',
     'TF_CONFIG needs a "cluster" of address lists'),
])
def test_a_bad_tf_config_is_one_clear_line(tf_config, expected):
    with pytest.raises(ConfigError, match="e.g. TF_CONFIG=") as error:
        cluster_from_tf_config(tf_config)
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_the_chief_is_the_chief_task_or_else_worker_0():
    two = {"worker": ["a:1", "b:1"]}
    spec = {"cluster": two, "task": {"type": "worker", "index": 0}}
    assert cluster_from_tf_config(json.dumps(spec)) == Cluster(2, "worker 0", chief=True)
    spec = {"cluster": {"chief": ["c:1"], **two}, "task": {"type": "worker", "index": 0}}
    assert cluster_from_tf_config(json.dumps(spec)) == Cluster(3, "worker 0", chief=False)
    spec["task"] = {"type": "chief", "index": 0}
    assert cluster_from_tf_config(json.dumps(spec)) == Cluster(3, "chief 0", chief=True)
    assert Runtime().cluster == Cluster(1, "worker 0", chief=True)


@pytest.mark.parametrize("command", ["train-gan", "transfer", "compare"])
def test_multi_worker_without_its_cluster_or_for_classifiers_is_refused(tmp_path, monkeypatch,
                                                                         command):
    import keras

    monkeypatch.delenv("TF_CONFIG", raising=False)
    out = tmp_path / "run"
    args = [command, "--distribute", "multi-worker", "--output-dir", str(out), "--quiet"]
    if command != "train-gan":
        args += ["--strategies", "scratch"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    if command == "transfer":
        expected = "train.distribute=multi-worker spans machines for GAN training only"
    elif keras.config.backend() == "tensorflow":
        expected = "train.distribute=multi-worker needs TF_CONFIG"
    else:
        expected = "set KERAS_BACKEND=tensorflow"
    assert expected in last, result.output
    assert not out.exists()


@pytest.mark.parametrize("command", ["train-gan", "compare"])
def test_multi_worker_needs_the_run_folder_named(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)  # a default run folder would be made under outputs/ here
    result = CliRunner().invoke(cli, [command, "--distribute", "multi-worker", "--quiet"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "--distribute multi-worker needs --output-dir" in result.output.strip().splitlines()[-1]
    assert list(tmp_path.iterdir()) == []
