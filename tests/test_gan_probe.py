"""The linear probe that watches GAN training (gan.probe) and the discriminator features (gan.features)."""

import csv
import dataclasses
import json
import logging
import zipfile

import keras
import numpy as np
import pytest

from gantransfer.config import load_config
from gantransfer.data import ImageSet
from gantransfer.errors import ConfigError
from gantransfer.gan import probe as gan_probe
from gantransfer.gan import train as gan_train
from gantransfer.gan.features import GridMaxPooling, probe_features
from gantransfer.gan.models import build_discriminator
from gantransfer.gan.probe import (BEST_PROBE_FILE, PROBE_C, DiscriminatorProbe, best_probe,
                                   linear_probe_accuracy, probe_subsets)
from gantransfer.gan.train import build_dcgan, load_gan_data, train_gan

TINY = ["gan.width=0.125", "gan.latent_dim=8", "gan.kernel_size=3", "train.verbose=0",
        "train.sample_images=4", "train.batch_size=16", "data.image_size=16",
        "train.deterministic=true"]
PROBE = ["train.probe_every=1", "train.probe_labels_per_class=5", "train.probe_images=100"]


def _config(*extra):
    return load_config(None, [*TINY, *extra])


def _digits(train_images: int, mark_test: bool = False):
    """Digits at 16x16, its training split cut to ``train_images``; with ``mark_test`` every test
    image is pure white, which no digit is, so a test image is recognised wherever it goes."""
    data = load_gan_data(_config())
    data = dataclasses.replace(data, train=data.train.subset(np.arange(train_images)))
    if mark_test:
        data = dataclasses.replace(data, test=ImageSet(np.full_like(data.test.x, 255), data.test.y))
    return data


def _history(run):
    with (run / "history.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def probed_run(tmp_path_factory):
    """A 3-epoch run with the probe every epoch, recording every image the probe reads."""
    data = _digits(300, mark_test=True)
    seen, drawn = [], []
    real_features, real_subsets = gan_probe.probe_features, gan_train.probe_subsets

    def spy_features(model, images, *args, **kwargs):
        seen.append(np.asarray(images))
        return real_features(model, images, *args, **kwargs)

    def spy_subsets(*args, **kwargs):
        drawn.append(real_subsets(*args, **kwargs))
        return drawn[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gan_probe, "probe_features", spy_features)
        patch.setattr(gan_train, "probe_subsets", spy_subsets)
        result = train_gan(_config("train.epochs=3", *PROBE), tmp_path_factory.mktemp("probe") / "run",
                           dataset=data)
    return result, data, seen, drawn


def test_probe_subsets_are_disjoint_per_class_and_reproducible():
    y = np.repeat(np.arange(4), 25)
    subsets = probe_subsets(y, 5, 30, seed=3)
    assert np.bincount(y[subsets.fit]).tolist() == [5] * 4
    assert len(subsets.score) == 30 and not set(subsets.fit) & set(subsets.score)
    again = probe_subsets(y, 5, 30, seed=3)
    assert np.array_equal(subsets.fit, again.fit) and np.array_equal(subsets.score, again.score)
    assert len(probe_subsets(y, 5, 1000, seed=3).score) == 80  # all that is left, no more
    with pytest.raises(ConfigError, match=r"train.probe_labels_per_class=30: .*fewer than"):
        probe_subsets(y, 30, 10, seed=0)
    with pytest.raises(ConfigError, match="leaves none to score"):
        probe_subsets(y, 25, 10, seed=0)


def test_best_probe_reads_the_earliest_best_epoch_and_skips_unscored_ones():
    nan = float("nan")
    assert best_probe({"epoch": [0, 1, 2], "probe_accuracy": [0.2, nan, 0.2]}) == (1, 0.2)
    assert best_probe({"epoch": [0, 1], "probe_accuracy": [nan, nan]}) is None


def test_a_probed_run_writes_the_column_the_plot_the_best_discriminator_and_run_json(probed_run):
    result, _, _, _ = probed_run
    run = result.run_dir
    scores = [float(row["probe_accuracy"]) for row in _history(run)]
    assert len(scores) == 3 and all(0 <= s <= 1 for s in scores)
    manifest = json.loads((run / "run.json").read_text())
    best = int(np.argmax(scores))  # the first of equal scores
    assert manifest["best_probe_epoch"] == best + 1
    assert manifest["best_probe_accuracy"] == scores[best]
    assert result.manifest["best_probe_epoch"] == best + 1
    kept = keras.saving.load_model(run / BEST_PROBE_FILE)
    assert kept.get_layer("block2_bn") is not None
    assert all(np.isfinite(np.asarray(w)).all() for w in kept.weights)
    if best == 2:  # the last epoch: the very discriminator of discriminator.keras
        for a, b in zip(kept.weights, result.gan.discriminator.weights):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # The loss plot gains a third panel for the probe.
    from PIL import Image

    assert Image.open(run / "losses.png").size[0] == 1500


def test_the_probe_never_reads_a_test_image(probed_run):
    _, data, seen, drawn = probed_run
    (subsets,) = drawn
    assert not set(subsets.fit) & set(subsets.score)
    assert max(subsets.fit.max(), subsets.score.max()) < len(data.train)
    assert len(subsets.fit) == 50 and len(subsets.score) == 100
    assert len(seen) == 6  # fit and score features, three epochs
    for images in seen:  # a white test image is 1.0 everywhere in the GAN's range
        assert not (images.reshape(len(images), -1) == 1.0).all(axis=1).any()
    assert sum(map(len, seen[:2])) == 150


def test_trained_and_random_discriminators_score_in_zero_one_and_stay_unchanged(probed_run):
    result, data, _, drawn = probed_run
    (subsets,) = drawn
    probe = DiscriminatorProbe(data.train.load(subsets.fit), data.train.y[subsets.fit],
                               data.train.load(subsets.score), data.train.y[subsets.score],
                               every=1, epochs=3)
    keras.utils.set_random_seed(0)
    random = build_discriminator(16, 1, width=0.125, kernel_size=3)
    for discriminator in (result.gan.discriminator, random):
        before = [np.asarray(w).copy() for w in discriminator.weights]
        accuracy = probe.score(discriminator)
        assert isinstance(accuracy, float) and 0.0 <= accuracy <= 1.0
        for a, b in zip(before, discriminator.weights):  # BatchNorm statistics put back
            np.testing.assert_array_equal(a, np.asarray(b))
    # The run logged the last epoch's score for this very discriminator.
    assert probe.score(result.gan.discriminator) == float(_history(result.run_dir)[-1][
        "probe_accuracy"])


@pytest.mark.slow
def test_a_run_with_the_probe_trains_exactly_as_one_without(probed_run, tmp_path):
    result, data, _, _ = probed_run
    plain = train_gan(_config("train.epochs=3"), tmp_path / "plain", dataset=data)
    for network in ("generator", "discriminator"):  # BatchNorm statistics included, bit for bit
        for a, b in zip(getattr(plain.gan, network).weights, getattr(result.gan, network).weights):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)


def test_linear_probe_accuracy_is_nan_on_non_finite_features():
    x = np.ones((4, 3)); x[0, 0] = np.inf
    assert np.isnan(linear_probe_accuracy((x, np.array([0, 1, 0, 1])), (x, np.array([0, 1, 0, 1]))))
    assert PROBE_C == 0.01


def test_a_non_finite_state_is_neither_scored_nor_saved(tmp_path):
    gan = build_dcgan(_config(), 16, 1)
    gan.discriminator.get_layer("block2_bn").moving_variance.assign(
        np.full((16,), np.inf, "float32"))
    x = np.zeros((4, 16, 16, 1), "uint8"); y = np.array([0, 1, 0, 1])
    probe = DiscriminatorProbe(x, y, x, y, every=1, epochs=1, best_path=tmp_path / BEST_PROBE_FILE)
    probe.set_model(gan)
    logs = {"d_loss": 0.7, "g_loss": 0.7}
    probe.on_epoch_end(0, logs)
    assert "probe_accuracy" not in logs and probe.best_epoch is None
    assert not (tmp_path / BEST_PROBE_FILE).exists()


def test_the_gans_of_one_config_at_other_seeds_are_probed_on_the_same_images(tmp_path):
    """compare --gan-per-seed trains seed s's GAN at train.seed + s from one config: each GAN's
    probe fits and scores the same images, so their probe scores compare. A config of its own at
    another seed draws other images."""
    from gantransfer.workflows.experiment import _gan_runs

    data = _digits(300)
    config = load_config(None, [*TINY, *PROBE, "transfer.gan_per_seed=true", "transfer.seeds=3"])
    gans = [gan_config for gan_config, _ in _gan_runs(config, tmp_path)]
    assert [gan.train.seed for gan in gans] == [0, 1, 2]
    assert [gan.train.probe_seed for gan in gans] == [0, 0, 0]
    first, *others = [gan_train._probe_callback(gan, data, tmp_path) for gan in gans]
    for probe in others:
        np.testing.assert_array_equal(probe.fit_images, first.fit_images)
        np.testing.assert_array_equal(probe.score_images, first.score_images)
        np.testing.assert_array_equal(probe.score_labels, first.score_labels)
    own = gan_train._probe_callback(_config(*PROBE, "train.seed=1"), data, tmp_path)
    assert not np.array_equal(own.score_images, first.score_images)


def test_the_probe_is_off_with_a_warning_on_unlabeled_data(tmp_path, caplog):
    data = _digits(64)
    data = dataclasses.replace(data, train=ImageSet(data.train.x, None), num_classes=None,
                               class_names=None)
    with caplog.at_level(logging.WARNING, logger="gantransfer.gan.train"):
        result = train_gan(_config("train.epochs=1", *PROBE), tmp_path / "run", dataset=data)
    assert "train.probe_every=1 needs a labeled dataset" in caplog.text
    assert "the probe is off" in caplog.text
    assert "probe_accuracy" not in _history(result.run_dir)[0]
    assert not (result.run_dir / BEST_PROBE_FILE).exists()
    assert "best_probe_epoch" not in result.manifest


@pytest.mark.slow
def test_the_best_probe_score_survives_a_resume(tmp_path, monkeypatch):
    scores = iter([0.5, 0.7, 0.6, 0.9])  # epochs 1, 2 | resumed: 3 | resumed again: 4
    monkeypatch.setattr(DiscriminatorProbe, "score", lambda self, discriminator: next(scores))
    data, run = _digits(96), tmp_path / "run"
    train_gan(_config("train.epochs=2", *PROBE), run, dataset=data)
    kept = (run / BEST_PROBE_FILE).read_bytes()
    assert json.loads((run / "run.json").read_text())["best_probe_epoch"] == 2
    # Epoch 3 scores below epoch 2's 0.7, read back from history.csv: the file stays.
    result = train_gan(_config("train.epochs=3", *PROBE), run, dataset=data, resume=True)
    assert (result.manifest["best_probe_epoch"], result.manifest["best_probe_accuracy"]) == (2, 0.7)
    assert (run / BEST_PROBE_FILE).read_bytes() == kept
    # Epoch 4 beats it: the file is replaced. Turning the probe off keeps the record.
    result = train_gan(_config("train.epochs=4", *PROBE), run, dataset=data, resume=True)
    assert (result.manifest["best_probe_epoch"], result.manifest["best_probe_accuracy"]) == (4, 0.9)
    assert (run / BEST_PROBE_FILE).read_bytes() != kept
    result = train_gan(_config("train.epochs=5", *PROBE[1:]), run, dataset=data, resume=True)
    assert result.manifest["best_probe_epoch"] == 4
    assert [row["probe_accuracy"] for row in _history(run)] == ["0.5", "0.7", "0.6", "0.9", "NA"]
    # What the score measures defines the run: a resume cannot change it.
    with pytest.raises(ConfigError, match="train.probe_images was 100 in this run and is 50"):
        train_gan(_config("train.epochs=6", *PROBE[:2], "train.probe_images=50"), run,
                  dataset=data, resume=True)
    with pytest.raises(ConfigError, match="train.probe_seed was 0 in this run and is 5 now"):
        train_gan(_config("train.epochs=6", *PROBE, "train.probe_seed=5"), run, dataset=data,
                  resume=True)


@pytest.mark.slow
@pytest.mark.parametrize("killed_after", ["HistoryCSV", "GANCheckpoint"])
def test_a_run_killed_at_the_end_of_its_best_epoch_resumes_with_its_row_and_its_discriminator(
        tmp_path, monkeypatch, killed_after):
    """Killed after the last epoch's history row, or after its checkpoint (before the best-probe
    discriminator is saved): the resume has every epoch's row once, and keeps the best epoch's
    discriminator, which is the last one here."""
    from gantransfer.gan import callbacks as gan_callbacks

    scores = iter([0.5, 0.9, 0.9])  # epochs 1, 2 | epoch 2 again, when it is trained again
    monkeypatch.setattr(DiscriminatorProbe, "score", lambda self, discriminator: next(scores))
    killing = getattr(gan_callbacks, killed_after)
    real_end = killing.on_epoch_end

    def end_then_kill(self, epoch, logs=None):
        real_end(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt  # the kill, right after this callback's work

    data, run = _digits(96), tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(killing, "on_epoch_end", end_then_kill)
        with pytest.raises(KeyboardInterrupt):
            train_gan(_config("train.epochs=2", *PROBE), run, dataset=data)
    before = (run / BEST_PROBE_FILE).read_bytes()  # epoch 1's: epoch 2's was never saved
    assert [row["epoch"] for row in _history(run)] == ["0", "1"]

    result = train_gan(_config("train.epochs=2", *PROBE), run, dataset=data, resume=True)
    assert [(row["epoch"], row["probe_accuracy"]) for row in _history(run)] == [("0", "0.5"),
                                                                                 ("1", "0.9")]
    assert (result.manifest["best_probe_epoch"], result.manifest["best_probe_accuracy"]) == (2, 0.9)
    best = keras.saving.load_model(run / BEST_PROBE_FILE)
    last = keras.saving.load_model(run / "discriminator.keras")
    assert (run / BEST_PROBE_FILE).read_bytes() != before
    for a, b in zip(best.weights, last.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)


@pytest.mark.slow
def test_the_best_probe_file_and_its_record_agree_after_a_resume_from_an_earlier_checkpoint(
        tmp_path, monkeypatch):
    """Epoch 2 scored best, then its checkpoint and the last were deleted: the resume goes on from
    epoch 1, which is now the best of the epochs it keeps, and the file must hold epoch 1's
    discriminator, not epoch 2's, which no kept row describes."""
    from gantransfer.gan.checkpoint import read_checkpoint, restore_checkpoint

    scores = iter([0.5, 0.9, 0.6, 0.4, 0.45])  # epochs 1, 2, 3 | again: 2, 3
    monkeypatch.setattr(DiscriminatorProbe, "score", lambda self, discriminator: next(scores))
    data, run = _digits(96), tmp_path / "run"
    result = train_gan(_config("train.epochs=3", *PROBE), run, dataset=data)
    assert result.manifest["best_probe_epoch"] == 2
    assert json.loads((run / "discriminator_best_probe.json").read_text()) == {
        "epoch": 2, "probe_accuracy": 0.9}
    for epoch in (2, 3):
        (run / f"checkpoints/epoch_{epoch:03d}.npz").unlink()
    result = train_gan(_config("train.epochs=3", *PROBE), run, dataset=data, resume=True)
    assert (result.manifest["best_probe_epoch"], result.manifest["best_probe_accuracy"]) == (1, 0.5)
    assert json.loads((run / "discriminator_best_probe.json").read_text())["epoch"] == 1
    first = build_dcgan(_config(), 16, 1)
    restore_checkpoint(first, read_checkpoint(run / "checkpoints/epoch_001.npz"))
    best = keras.saving.load_model(run / BEST_PROBE_FILE)
    for a, b in zip(best.weights, first.discriminator.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)


def test_turning_the_probe_on_at_a_resume_adds_its_column_to_history(tmp_path, monkeypatch):
    monkeypatch.setattr(DiscriminatorProbe, "score", lambda self, discriminator: 0.25)
    data, run = _digits(96), tmp_path / "run"
    train_gan(_config("train.epochs=1"), run, dataset=data)
    result = train_gan(_config("train.epochs=2", *PROBE), run, dataset=data, resume=True)
    rows = _history(run)
    assert [row["probe_accuracy"] for row in rows] == ["NA", "0.25"]
    assert all(None not in row and None not in row.values() for row in rows)  # aligned rows
    assert rows[0]["d_loss"] != "NA" and rows[1]["d_loss"] != "NA"
    assert result.manifest["best_probe_epoch"] == 2


def test_the_features_moved_but_old_imports_and_saved_files_still_work(tmp_path):
    from gantransfer.transfer_learning import probe as old
    from gantransfer.transfer_learning.trunks import (TrunkArchitecture, build_gan_trunk,
                                                      reestimate_batchnorm)
    from gantransfer.gan import features

    assert old.GridMaxPooling is GridMaxPooling and old.probe_features is probe_features
    assert reestimate_batchnorm is features.reestimate_batchnorm
    assert keras.saving.get_registered_name(GridMaxPooling) == "gantransfer>GridMaxPooling"
    data = _digits(200)
    x = data.train.x.astype("float32")
    y = data.train.y
    trunk = build_gan_trunk(TrunkArchitecture(16, 1, width=0.125, kernel_size=3))
    fitted = old.fit_probe((probe_features(trunk, x[:100]), y[:100]),
                           (probe_features(trunk, x[100:]), y[100:]), Cs=[0.1]).model
    model = old.probe_as_keras(fitted, (16, 16, 1), 10, trunk)
    expected = fitted.predict(probe_features(trunk, x[100:]))
    assert (np.argmax(model.predict(x[100:], verbose=0), -1) == expected).all()
    # A file saved before the move names the layer's old module: it loads all the same.
    model.save(tmp_path / "new.keras")
    with zipfile.ZipFile(tmp_path / "new.keras") as source, \
            zipfile.ZipFile(tmp_path / "old.keras", "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "config.json":
                assert b'"gantransfer.gan.features"' in content
                content = content.replace(b'"gantransfer.gan.features"',
                                          b'"gantransfer.transfer_learning.probe"')
            target.writestr(item, content)
    for name in ("new.keras", "old.keras"):
        loaded = keras.saving.load_model(tmp_path / name)
        assert (np.argmax(loaded.predict(x[100:], verbose=0), -1) == expected).all(), name
