"""DCGAN training: the train step, train_gan's run folder, resume equivalence, the NaN guard."""

import csv
import json
import logging

import keras
import numpy as np
import pytest
from PIL import Image

from gantransfer.config import load_config
from gantransfer.errors import ConfigError, RunFolderError, TrainingDiverged
from gantransfer.gan.checkpoint import latest_checkpoint, list_checkpoints, read_checkpoint
from gantransfer.gan.dcgan import DCGAN
from gantransfer.gan.models import build_discriminator, build_generator
from gantransfer.data import load_dataset
from gantransfer.gan.train import _build_models, build_dcgan, train_gan


@pytest.fixture
def blobs_npz(tmp_path):
    """48 tiny 16x16 grey images of bright squares at random places: a real, learnable signal."""
    rng = np.random.default_rng(0)
    x = np.zeros((48, 16, 16), "uint8")
    for image in x:
        top, left = rng.integers(0, 10, size=2)
        image[top:top + 6, left:left + 6] = 255
    path = tmp_path / "blobs.npz"
    np.savez(path, x=x)
    return path


def _config(tiny_overrides, dataset, *extra):
    return load_config(None, [*tiny_overrides, f"data.dataset={dataset}", "data.image_size=32",
                              "train.deterministic=true", *extra])


def test_one_fit_step_gives_finite_losses_and_moves_both_networks():
    keras.utils.set_random_seed(0)
    gan = DCGAN(build_generator(32, 1, latent_dim=8, width=0.125, kernel_size=3),
                build_discriminator(32, 1, width=0.125, kernel_size=3), seed=0)
    gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
    g_before = [w.numpy().copy() for w in gan.generator.trainable_weights]
    d_before = [w.numpy().copy() for w in gan.discriminator.trainable_weights]
    real = np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 1)).astype("float32")
    history = gan.fit(real, batch_size=8, epochs=1, verbose=0).history
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert np.isfinite(history[key][0]), key
    assert 0 < history["d_real"][0] < 1 and 0 < history["d_fake"][0] < 1
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(g_before, gan.generator.trainable_weights))
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(d_before, gan.discriminator.trainable_weights))


def test_train_step_names_supported_backends(monkeypatch):
    gan = DCGAN(build_generator(32, 1, latent_dim=4, width=0.125),
                build_discriminator(32, 1, width=0.125))
    monkeypatch.setattr(keras.config, "backend", lambda: "torch")
    with pytest.raises(NotImplementedError, match="supports the jax and tensorflow backends; received "
                                                  "KERAS_BACKEND='torch'"):
        gan.train_step(np.zeros((2, 32, 32, 1), "float32"))


def test_train_gan_writes_the_whole_run_folder(tmp_path, tiny_overrides, blobs_npz):
    config = _config(tiny_overrides, blobs_npz, "train.epochs=2", "data.test_split=0")
    result = train_gan(config, tmp_path / "run")
    run = result.run_dir
    for name in ("config.yaml", "generator.keras", "discriminator.keras", "history.csv",
                 "losses.png", "run.json", "samples/epoch_001.png", "samples/epoch_002.png",
                 "checkpoints/epoch_002.npz"):
        assert (run / name).is_file(), name
    assert load_config(run / "config.yaml") == config
    generator = keras.saving.load_model(run / "generator.keras")
    discriminator = keras.saving.load_model(run / "discriminator.keras")
    z = np.zeros((1, 8), "float32")
    np.testing.assert_allclose(generator(z), result.gan.generator(z), atol=1e-6)
    assert discriminator.get_layer("block2_conv").kernel.shape == (3, 3, 8, 16)
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["dataset"]["images"] == 48 and manifest["seed"] == 0
    assert manifest["images_per_second"] > 0 and manifest["wall_time_s"] > 0
    assert {"keras", "tensorflow", "numpy"} <= set(manifest["versions"])
    with (run / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert set(rows[0]) == {"epoch", "d_loss", "g_loss", "d_real", "d_fake", "images_per_s"}
    grid = np.asarray(Image.open(run / "samples/epoch_002.png"))
    assert grid.ndim == 2 and grid.shape[0] >= 64 and grid.std() > 0  # 2x2 grid of 32px, upscaled


def test_existing_run_folder_is_never_overwritten_without_asking(tmp_path, tiny_overrides, blobs_npz):
    config = _config(tiny_overrides, blobs_npz, "train.epochs=1")
    train_gan(config, tmp_path / "run")
    before = (tmp_path / "run/checkpoints/epoch_001.npz").read_bytes()
    with pytest.raises(RunFolderError, match="already exists; pass --resume"):
        train_gan(config, tmp_path / "run")
    assert (tmp_path / "run/checkpoints/epoch_001.npz").read_bytes() == before
    train_gan(config, tmp_path / "run", overwrite=True)
    assert len(list_checkpoints(tmp_path / "run/checkpoints")) == 1


def _state(gan) -> dict[str, np.ndarray]:
    """Everything a run carries on: both networks, both optimizers, the noise seed."""
    variables = (gan.generator.variables + gan.discriminator.variables
                 + gan.g_optimizer.variables + gan.d_optimizer.variables + [gan.seed_generator.state]
                 + (gan.rotation_head.variables if gan.rotation_head is not None else []))
    # By name, not path: an optimizer's path carries a per-process counter (adam_1, adam_7).
    return {f"{i}:{v.name}": np.asarray(v) for i, v in enumerate(variables)}


@pytest.mark.slow
def test_resume_is_equivalent_to_training_straight(tmp_path, tiny_overrides, blobs_npz):
    # train.deterministic=true (in _config): the same kernels, so the same bits.
    straight = train_gan(_config(tiny_overrides, blobs_npz, "train.epochs=3"), tmp_path / "straight")
    train_gan(_config(tiny_overrides, blobs_npz, "train.epochs=1"), tmp_path / "resumed")
    train_gan(_config(tiny_overrides, blobs_npz, "train.epochs=2"), tmp_path / "resumed",
              resume=True)  # resumed from epoch 1 ...
    resumed = train_gan(_config(tiny_overrides, blobs_npz, "train.epochs=3"), tmp_path / "resumed",
                        resume=True)  # ... and again from epoch 2
    a, b = _state(straight.gan), _state(resumed.gan)
    assert list(a) == list(b)
    for key in a:  # weights, BatchNorm statistics, both optimizers and the seed: bit for bit
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for name in ("epoch_001.png", "epoch_002.png", "epoch_003.png"):  # the same fixed noise
        assert (tmp_path / "straight/samples" / name).read_bytes() == \
            (tmp_path / "resumed/samples" / name).read_bytes(), name
    with (tmp_path / "resumed/history.csv").open() as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [0, 1, 2]
    manifest = json.loads((tmp_path / "resumed/run.json").read_text())
    sessions = manifest["sessions"]
    assert [s["epochs"] for s in sessions] == [[1, 1], [2, 2], [3, 3]]
    # The manifest describes the whole run, not the last session.
    assert manifest["wall_time_s"] == pytest.approx(sum(s["wall_time_s"] for s in sessions), abs=0.02)
    assert manifest["images_per_second"] == pytest.approx(
        np.mean([s["images_per_second"] for s in sessions]), abs=0.1)


@pytest.fixture
def upright_npz(tmp_path):
    """64 tiny 16x16 grey images with a bar along the top and a square below it, placed at random:
    upright images, whose rotation can be told (as it can for digits or clothes)."""
    rng = np.random.default_rng(0)
    x = np.zeros((64, 16, 16), "uint8")
    for image in x:
        image[:3, rng.integers(0, 6):] = 255
        top, left = rng.integers(6, 12), rng.integers(0, 12)
        image[top:top + 4, left:left + 4] = 160
    path = tmp_path / "upright.npz"
    np.savez(path, x=x)
    return path


def test_rotation_quarters_match_numpy():
    from gantransfer.gan.dcgan import rotate_quarters

    images = np.random.default_rng(0).normal(size=(8, 6, 6, 2)).astype("float32")
    quarters = np.array([0, 1, 2, 3, 3, 2, 1, 0])
    turned = keras.ops.convert_to_numpy(rotate_quarters(images, quarters))
    for image, k, got in zip(images, quarters, turned):
        np.testing.assert_allclose(got, np.rot90(image, k=k, axes=(0, 1)), atol=1e-6)


@pytest.mark.slow
def test_rotation_self_supervision_learns_the_rotations_and_resumes_bit_for_bit(
        tmp_path, tiny_overrides, upright_npz):
    def config(epochs):
        return _config(tiny_overrides, upright_npz, f"train.epochs={epochs}",
                       "gan.rotation_weight=1.0", "data.test_split=0")

    straight = train_gan(config(4), tmp_path / "straight")
    assert straight.gan.rotation_head is not None
    with (tmp_path / "straight/history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    rotation = [float(r["d_rotation"]) for r in rows]
    assert rotation[-1] > 0.6 > 0.25  # far above chance (a quarter): the head tells the turns
    checkpoint = latest_checkpoint(tmp_path / "straight/checkpoints")
    assert [a.shape for a in checkpoint.variables["rotation_head"]] == [(4 * 4 * 32, 4), (4,)]
    # What transfers is the discriminator alone: one real/fake logit, no rotation head.
    discriminator = keras.saving.load_model(tmp_path / "straight/discriminator.keras")
    assert discriminator.output_shape == (None, 1)
    assert "rotation_head" not in [layer.name for layer in discriminator.layers]
    # The rotation head and its optimizer state are carried across a resume, bit for bit.
    train_gan(config(2), tmp_path / "resumed")
    resumed = train_gan(config(4), tmp_path / "resumed", resume=True)
    a, b = _state(straight.gan), _state(resumed.gan)
    assert list(a) == list(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_the_plain_dcgan_has_no_rotation_head(tiny_overrides):
    gan = build_dcgan(load_config(None, tiny_overrides), 32, 1)
    assert gan.rotation_head is None and [m.name for m in gan.metrics] == [
        "d_loss", "g_loss", "d_real", "d_fake"]


def test_resume_past_the_last_epoch_is_refused(tmp_path, tiny_overrides, blobs_npz):
    config = _config(tiny_overrides, blobs_npz, "train.epochs=1")
    train_gan(config, tmp_path / "run")
    with pytest.raises(RunFolderError, match="already has 1 epochs; pass --epochs larger than 1"):
        train_gan(config, tmp_path / "run", resume=True)


def test_a_run_killed_while_writing_its_models_is_finished_by_resume(tmp_path, tiny_overrides,
                                                                   blobs_npz, monkeypatch):
    from gantransfer.gan import train as train_module

    config = _config(tiny_overrides, blobs_npz, "train.epochs=2")
    real_save = train_module.atomic_save

    def killed(path, save):
        raise KeyboardInterrupt  # as a kill after the last checkpoint, before generator.keras

    monkeypatch.setattr(train_module, "atomic_save", killed)
    with pytest.raises(KeyboardInterrupt):
        train_gan(config, tmp_path / "run")
    assert not (tmp_path / "run/generator.keras").exists()
    assert not (tmp_path / "run/run.json").exists()
    monkeypatch.setattr(train_module, "atomic_save", real_save)

    finished = train_gan(config, tmp_path / "run", resume=True)  # no "already has 2 epochs"
    checkpoint = latest_checkpoint(tmp_path / "run/checkpoints")
    assert checkpoint.epoch == 2 and finished.history == {}
    generator = keras.saving.load_model(tmp_path / "run/generator.keras")
    for saved, restored in zip(generator.weights, finished.gan.generator.weights):
        np.testing.assert_array_equal(saved.numpy(), restored.numpy())
    z = np.zeros((1, 8), "float32")
    assert float(np.std(generator(z))) > 0
    manifest = json.loads((tmp_path / "run/run.json").read_text())
    assert manifest["epochs"] == 2 and [s["epochs"] for s in manifest["sessions"]] == [[]]
    with (tmp_path / "run/history.csv").open() as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [0, 1]
    # Now the run is complete, and a resume says so.
    with pytest.raises(RunFolderError, match="already has 2 epochs"):
        train_gan(config, tmp_path / "run", resume=True)


def test_resume_without_checkpoints_is_refused_when_the_run_had_trained(tmp_path, tiny_overrides,
                                                                        blobs_npz):
    import shutil

    run = tmp_path / "run"
    train_gan(_config(tiny_overrides, blobs_npz, "train.epochs=2"), run)
    shutil.rmtree(run / "checkpoints")  # say, to save disk
    kept = {name: (run / name).read_bytes() for name in ("generator.keras", "history.csv",
                                                         "run.json", "config.yaml")}
    with pytest.raises(RunFolderError, match="has no readable checkpoint, though it trained before "
                                             r"\(it holds run.json, generator.keras, "
                                             "discriminator.keras, history.csv rows of 2 epochs"):
        train_gan(_config(tiny_overrides, blobs_npz, "train.epochs=3"), run, resume=True)
    assert {name: (run / name).read_bytes() for name in kept} == kept


def test_a_run_killed_in_its_first_epoch_starts_again_on_resume(tmp_path, tiny_overrides,
                                                                blobs_npz, monkeypatch):
    from gantransfer.gan import callbacks as gan_callbacks

    real_end = gan_callbacks.HistoryCSV.on_epoch_end

    def end_then_kill(self, epoch, logs=None):
        real_end(self, epoch, logs)
        raise KeyboardInterrupt  # after the first row, before the first checkpoint

    config = _config(tiny_overrides, blobs_npz, "train.epochs=2")
    with monkeypatch.context() as patch:
        patch.setattr(gan_callbacks.HistoryCSV, "on_epoch_end", end_then_kill)
        with pytest.raises(KeyboardInterrupt):
            train_gan(config, tmp_path / "run")
    assert not list((tmp_path / "run/checkpoints").glob("*.npz"))
    train_gan(config, tmp_path / "run", resume=True)
    with (tmp_path / "run/history.csv").open() as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [0, 1]


class _PoisonAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            kernel = self.model.discriminator.get_layer("head_dense").kernel
            kernel.assign(np.full(kernel.shape, np.nan, "float32"))


def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(tmp_path, tiny_overrides, blobs_npz):
    config = _config(tiny_overrides, blobs_npz, "train.epochs=4")
    with pytest.raises(TrainingDiverged, match=r"non-finite at epoch 2, batch 1.*last good "
                                               r"checkpoint \(epoch 1\)"):
        train_gan(config, tmp_path / "run", callbacks=[_PoisonAtEpoch(1)])
    assert [p.name for p in list_checkpoints(tmp_path / "run/checkpoints")] == ["epoch_001.npz"]
    checkpoint = latest_checkpoint(tmp_path / "run/checkpoints")
    assert all(np.isfinite(v).all() for group in checkpoint.variables.values() for v in group)
    assert not (tmp_path / "run/samples/epoch_002.png").exists()
    assert not (tmp_path / "run/generator.keras").exists()


def test_the_build_step_restores_weights_optimizers_and_fixed_noise(tmp_path, tiny_overrides,
                                                                     blobs_npz):
    config = _config(tiny_overrides, blobs_npz, "train.epochs=1")
    trained = train_gan(config, tmp_path / "run").gan
    data = load_dataset(str(blobs_npz), image_size=32, validation_split=0.0)
    checkpoint = latest_checkpoint(tmp_path / "run/checkpoints")
    gan, noise = _build_models(config, data, checkpoint)
    np.testing.assert_array_equal(noise, checkpoint.fixed_noise)
    for a, b in zip(trained.weights + trained.d_optimizer.variables,
                    gan.weights + gan.d_optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    _, fresh = _build_models(config, data, None)
    _, again = _build_models(config, data, None)
    assert fresh.shape == (4, 8) and np.array_equal(fresh, again)  # seeded: the same grid noise


def test_build_dcgan_follows_the_config(tiny_overrides):
    gan = build_dcgan(load_config(None, tiny_overrides), 28, 3)
    assert gan.generator.output_shape == (None, 28, 28, 3)
    assert gan.latent_dim == 8
    assert float(gan.d_optimizer.learning_rate) == pytest.approx(2e-4)
    assert float(gan.g_optimizer.beta_1) == pytest.approx(0.5)


@pytest.mark.parametrize("missing", ["tensorboard", "tensorflow"])
def test_tensorboard_without_its_packages_is_a_clear_error(tmp_path, tiny_overrides, blobs_npz,
                                                           monkeypatch, missing):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == missing else real_find_spec(name, *a))
    with pytest.raises(ConfigError, match=r"train.tensorboard needs the tensorboard and "
                                          r"tensorflow packages: pip install 'gantransfer\[tensorb"):
        train_gan(_config(tiny_overrides, blobs_npz, "train.tensorboard=true"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_tensorboard_logs_on_request(tmp_path, tiny_overrides, blobs_npz):
    pytest.importorskip("tensorflow", reason="Keras's TensorBoard callback writes with tf.summary")
    train_gan(_config(tiny_overrides, blobs_npz, "train.epochs=1", "train.tensorboard=true"),
              tmp_path / "run")
    events = list((tmp_path / "run/tensorboard").rglob("events.out.tfevents.*"))
    assert events and all(p.stat().st_size > 0 for p in events)


@pytest.mark.slow
def test_real_fashion_mnist_run(tmp_path, tiny_overrides):
    """A few real steps on Fashion-MNIST from Debian's dataset-fashion-mnist package."""
    from gantransfer.data import load_dataset
    from gantransfer.data import sources

    if not (sources.FASHION_MNIST_DEBIAN_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist")
    data = load_dataset("fashion_mnist", image_size=32, validation_split=0.0, seed=0)
    assert len(data.train) == 60000 and data.num_classes == 10
    data.train = data.train.subset(np.arange(256))
    config = _config(tiny_overrides, "fashion_mnist", "train.epochs=2", "train.batch_size=64")
    result = train_gan(config, tmp_path / "run", dataset=data)
    history = result.history
    assert len(history["d_loss"]) == 2 and all(np.isfinite(history["d_loss"] + history["g_loss"]))
    grid = np.asarray(Image.open(tmp_path / "run/samples/epoch_002.png"))
    assert grid.std() > 0
    manifest = json.loads((tmp_path / "run/run.json").read_text())
    assert "/usr/share/datasets/fashion-mnist" in manifest["dataset"]["source"]


@pytest.mark.slow
def test_fid_and_kid_logged_every_n_epochs(tmp_path, tiny_overrides):
    config = _config(tiny_overrides, "digits", "train.epochs=3", "train.metrics_every=2",
                     "train.metrics_images=100")
    train_gan(config, tmp_path / "run")
    with (tmp_path / "run/history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["fid"] == "NA" for r in rows] == [True, False, False]  # epochs 2 and 3 (the last)
    assert all(float(r["fid"]) > 0 and np.isfinite(float(r["kid"])) for r in rows[1:])
    assert (tmp_path / "run/checkpoints/epoch_003.npz").is_file()  # NA metrics are no divergence


def test_metrics_on_unlabeled_data_without_inception_is_a_clear_error(tmp_path, tiny_overrides,
                                                                      blobs_npz):
    with pytest.raises(ConfigError, match="train.metrics_every needs labels"):
        train_gan(_config(tiny_overrides, blobs_npz, "train.metrics_every=1"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_real_divergence_with_finite_losses_is_caught_and_nothing_non_finite_is_written(
        tmp_path, tiny_overrides):
    # A learning rate no config allows (set on the object, after validation): within the first
    # epoch the BatchNorm moving variances overflow to inf while both losses stay finite.
    config = load_config(None, [*tiny_overrides, "data.image_size=32", "train.epochs=3",
                                "train.keep_checkpoints=0"])
    config.gan.learning_rate = 1e8
    with pytest.raises(TrainingDiverged, match=r"variables became NaN or inf at epoch 1, "
                                               r".*moving_variance.*while the losses were finite"):
        train_gan(config, tmp_path / "run")
    history = (tmp_path / "run/history.csv").read_text().splitlines()
    assert "nan" not in history[1].lower() and "inf" not in history[1].lower()  # finite losses
    assert not (tmp_path / "run/generator.keras").exists()
    assert not (tmp_path / "run/discriminator.keras").exists()
    for path in (tmp_path / "run/checkpoints").glob("*.npz"):  # none, or only finite ones
        checkpoint = read_checkpoint(path)
        assert all(np.isfinite(v).all() for group in checkpoint.variables.values() for v in group)


def test_save_checkpoint_refuses_a_non_finite_state(tmp_path, tiny_overrides):
    from gantransfer.gan.checkpoint import save_checkpoint

    gan = build_dcgan(load_config(None, tiny_overrides), 32, 1)
    gan.discriminator.get_layer("block2_bn").moving_variance.assign(
        np.full(gan.discriminator.get_layer("block2_bn").moving_variance.shape, np.inf, "float32"))
    with pytest.raises(TrainingDiverged, match="block2_bn/moving_variance"):
        save_checkpoint(gan, tmp_path, 1, np.zeros((4, 8), "float32"))
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_a_collapse_is_said_by_default_and_stops_when_asked(tmp_path, tiny_overrides, caplog):
    # At the highest learning rate a config allows, training collapses within two epochs (on
    # TensorFlow D wins outright, d_loss 0; on JAX the generator's pixels saturate first).
    overrides = [*tiny_overrides, "data.image_size=32", "train.epochs=4", "gan.learning_rate=0.9"]
    with caplog.at_level(logging.WARNING, logger="gantransfer.gan.callbacks"):
        result = train_gan(load_config(None, overrides), tmp_path / "warned")
    assert "GAN training has collapsed: " in caplog.text
    assert (result.run_dir / "generator.keras").is_file()  # only a warning: the run finishes
    with pytest.raises(TrainingDiverged, match="collapsed.*train.stop_on_collapse"):
        train_gan(load_config(None, [*overrides, "train.stop_on_collapse=true"]),
                  tmp_path / "stopped")
    assert not (tmp_path / "stopped/generator.keras").exists()
    assert list((tmp_path / "stopped/checkpoints").glob("epoch_*.npz"))  # its epochs are kept


def test_the_loss_plot_marks_whole_epochs_only(tmp_path, monkeypatch):
    from matplotlib import pyplot as plt

    from gantransfer.gan import callbacks

    (tmp_path / "history.csv").write_text(
        "epoch,d_loss,g_loss,d_real,d_fake,probe_accuracy\n0,0.6,3.0,0.9,0.1,0.70\n"
        "1,0.6,2.5,0.8,0.2,0.71\n2,0.7,2.0,0.8,0.2,0.72\n")
    ticks = []
    real_save = callbacks.atomic_save

    def save(path, write):  # the figure is still pyplot's current one while it is saved
        ticks.extend(list(axis.get_xticks()) for axis in plt.gcf().axes)
        real_save(path, write)

    monkeypatch.setattr(callbacks, "atomic_save", save)
    callbacks.plot_history(tmp_path / "history.csv", tmp_path / "losses.png")
    assert (tmp_path / "losses.png").is_file() and len(ticks) == 3  # losses, D's outputs, probe
    for axis_ticks in ticks:  # three epochs: no 1.25 or 2.5 between them
        assert [t for t in axis_ticks if 1 <= t <= 3] == [1.0, 2.0, 3.0]
