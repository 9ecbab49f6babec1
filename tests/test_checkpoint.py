"""Checkpoints: round trips, shape checks, and surviving a kill -9 in the middle of a write."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from gantransfer.config import load_config
from gantransfer.errors import RunFolderError
from gantransfer.gan.checkpoint import (latest_checkpoint, list_checkpoints, prune_checkpoints,
                                        read_checkpoint, restore_checkpoint, save_checkpoint)
from gantransfer.gan.train import build_dcgan


def _gan(tiny_overrides, *extra):
    return build_dcgan(load_config(None, [*tiny_overrides, *extra]), 32, 1)


def test_round_trip_restores_every_variable(tmp_path, tiny_overrides):
    source = _gan(tiny_overrides)
    source.seed_generator.next()  # move the noise stream so its state is not the initial one
    noise = np.arange(16, dtype="float32").reshape(2, 8)
    save_checkpoint(source, tmp_path, 3, noise)
    target = _gan(tiny_overrides, "train.seed=5")
    restore_checkpoint(target, read_checkpoint(tmp_path / "epoch_003.npz"))
    groups = lambda g: (g.generator.variables + g.discriminator.variables + g.g_optimizer.variables
                        + g.d_optimizer.variables + [g.seed_generator.state])
    for a, b in zip(groups(source), groups(target)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    checkpoint = latest_checkpoint(tmp_path)
    assert checkpoint.epoch == 3
    np.testing.assert_array_equal(checkpoint.fixed_noise, noise)


def test_restoring_into_another_architecture_names_the_variable(tmp_path, tiny_overrides):
    save_checkpoint(_gan(tiny_overrides), tmp_path, 1, np.zeros((1, 8)))
    wider = _gan(tiny_overrides, "gan.width=0.25")
    with pytest.raises(RunFolderError, match=r"project_dense/kernel has shape \(8, 512\) "
                                             r"in the checkpoint and \(8, 1024\) in the model"):
        restore_checkpoint(wider, read_checkpoint(tmp_path / "epoch_001.npz"))


def test_latest_skips_an_unreadable_file_and_prune_keeps_the_newest(tmp_path, tiny_overrides):
    gan = _gan(tiny_overrides)
    for epoch in (1, 2, 3):
        save_checkpoint(gan, tmp_path, epoch, np.zeros((1, 8)))
    (tmp_path / "epoch_004.npz").write_bytes(b"not a zip")
    (tmp_path / ".epoch_005.npz.abc.tmp").write_bytes(b"half")
    (tmp_path / "epoch_006.npz").write_bytes(b"")  # a copy cut short: np.load raises EOFError
    assert latest_checkpoint(tmp_path).epoch == 3
    with pytest.raises(RunFolderError, match="epoch_006.npz' is unreadable"):
        read_checkpoint(tmp_path / "epoch_006.npz")
    (tmp_path / "epoch_006.npz").unlink()
    with pytest.raises(RunFolderError, match="epoch_004.npz' is unreadable"):
        read_checkpoint(tmp_path / "epoch_004.npz")
    prune_checkpoints(tmp_path, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["epoch_003.npz", "epoch_004.npz"]
    assert not (tmp_path / ".epoch_005.npz.abc.tmp").exists()


WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from gantransfer.config import load_config
    from gantransfer.gan.checkpoint import save_checkpoint, prune_checkpoints
    from gantransfer.gan.train import build_dcgan
    folder, start = sys.argv[1], int(sys.argv[2])
    gan = build_dcgan(load_config(None, ["gan.width=0.5", "gan.latent_dim=100"]), 32, 1)
    print("ready", flush=True)
    epoch = start
    while True:
        for v in gan.generator.trainable_variables[:1]:
            v.assign(v + 1.0)
        save_checkpoint(gan, folder, epoch, np.full((4, 100), epoch, "float32"))
        prune_checkpoints(folder, keep=0) if epoch % 7 else None
        epoch += 1
""")


def _writing(folder) -> bool:
    try:
        return any(name.endswith(".tmp") for name in os.listdir(folder))
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_kill_during_checkpoint_writes_leaves_a_loadable_checkpoint(tmp_path):
    """kill -9 a process that writes multi-megabyte checkpoints back to back, five times."""
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    rng = np.random.default_rng(0)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    killed_mid_write = 0
    start = 1
    for attempt in range(5):
        process = subprocess.Popen([sys.executable, "-c", WRITER, str(folder), str(start)],
                                   stdout=subprocess.PIPE, env=env)
        assert process.stdout.readline().strip() == b"ready"
        deadline = time.time() + 60
        while len(list_checkpoints(folder)) < start and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.05, 0.4))  # a moment anywhere in the loop
        # Every other kill waits for a write under way, so that one lands mid-write however fast
        # this machine writes (a random moment alone missed every write in one run of 5).
        while attempt % 2 and not _writing(folder) and time.time() < deadline:
            pass
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed_mid_write += any(p.name.endswith(".tmp") for p in folder.iterdir())
        for path in list_checkpoints(folder):  # every finished checkpoint reads back whole
            checkpoint = read_checkpoint(path)
            assert checkpoint.fixed_noise[0, 0] == checkpoint.epoch
        latest = latest_checkpoint(folder)
        assert latest is not None and latest.epoch == int(list_checkpoints(folder)[-1].name[6:9])
        start = latest.epoch + 1
    assert killed_mid_write >= 1, "no kill landed during a write; the test proved nothing"
