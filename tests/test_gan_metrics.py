"""FID and KID: their defining properties, on Gaussian features and on real digits; scoring a
generator from its run folder or from memory."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from gantransfer.cli import cli
from gantransfer.data import load_dataset
from gantransfer.errors import GantransferError
from gantransfer.evaluation.gan_metrics import features, frechet_distance, kernel_inception_distance
from gantransfer.gan import extractors
from gantransfer.gan.extractors import classifier_extractor, classifier_fingerprint
from gantransfer.gan.models import build_generator
from gantransfer.workflows.scoring import score_generator


def test_identical_distributions_score_about_zero_and_kid_is_unbiased():
    rng = np.random.default_rng(0)
    kids, fids = [], []
    for _ in range(12):
        a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
        kids.append(kernel_inception_distance(a, b, subsets=5, subset_size=400)[0])
        fids.append(frechet_distance(a, b))
    assert abs(np.mean(kids)) < 0.02
    assert min(kids) < 0 < max(kids)  # unbiased: below zero about half the time
    assert min(fids) > 0 and np.mean(fids) < 1.0  # FID is biased upwards, but small


def test_both_grow_with_the_distance_between_distributions():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(500, 8))
    shifts = [0.0, 0.25, 0.5, 1.0, 2.0]
    fid = [frechet_distance(real, rng.normal(size=(500, 8)) + s) for s in shifts]
    kid = [kernel_inception_distance(real, rng.normal(size=(500, 8)) + s, seed=2)[0]
           for s in shifts]
    assert fid == sorted(fid) and kid == sorted(kid)
    assert fid[-1] == pytest.approx(8 * 2.0**2, rel=0.1)  # |mu difference|^2 dominates


def test_fid_with_dead_features_is_zero_against_itself_and_never_negative():
    # Constant (dead) features make the covariance product singular: the square root is then
    # retried on nudged diagonals, whose rounding must not push the distance below zero.
    rng = np.random.default_rng(2)
    alive = rng.normal(size=(300, 3))
    dead = np.concatenate([alive, np.ones((300, 2))], axis=1)
    assert frechet_distance(dead, dead) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(np.zeros((10, 3)), np.zeros((10, 3))) == 0.0
    assert frechet_distance(dead, dead + [1, 0, 0, 0, 0]) == pytest.approx(1.0, abs=1e-3)


def test_bad_feature_sets():
    with pytest.raises(GantransferError, match="FID needs two"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(GantransferError, match="KID needs two"):
        kernel_inception_distance(np.zeros((1, 3)), np.zeros((5, 3)))


@pytest.fixture(scope="module")
def digits_extractor():
    data = load_dataset("digits", image_size=32, validation_split=0.0, seed=0)
    # The classifier that FID on the digits uses (the run's cache holds it if a test trained it).
    extractor, info = classifier_extractor(data.train.x, data.train.y, 10, seed=0)
    return data, extractor, info["train_accuracy"]


@pytest.mark.slow
def test_on_real_digits_noise_raises_both_monotonically(digits_extractor):
    data, extractor, accuracy = digits_extractor
    assert accuracy > 0.8  # the features mean something
    x = data.train.x.astype("float32")
    half = len(x) // 2
    real = features(extractor, x[:half])
    rng = np.random.default_rng(0)
    fids, kids = [], []
    for sigma in (0, 20, 40, 80, 160):
        noisy = np.clip(x[half:2 * half] + rng.normal(0, sigma, x[half:2 * half].shape), 0, 255)
        fake = features(extractor, noisy)
        fids.append(frechet_distance(real, fake))
        kids.append(kernel_inception_distance(real, fake, subset_size=500)[0])
    assert fids == sorted(fids) and kids == sorted(kids)
    # An independent sample of real digits is far closer than any noisy one.
    assert fids[0] < 0.2 * fids[2] and abs(kids[0]) < 0.2 * kids[2]


@pytest.mark.slow
def test_evaluate_gan_command(tmp_path):
    runner = CliRunner()
    run = tmp_path / "gan"
    result = runner.invoke(cli, ["train-gan", "--epochs", "1", "--output-dir", str(run),
                                 "--set", "gan.width=0.125", "--set", "gan.kernel_size=3", "--quiet"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["evaluate-gan", str(run), "--num-images", "200",
                                 "--extractor", "classifier"])
    assert result.exit_code == 0, result.output
    scores = json.loads((run / "gan_metrics.json").read_text())
    assert scores["extractor"] == "classifier" and scores["real_images"] == 200
    assert scores["fid"] > 0 and np.isfinite(scores["kid"])
    assert (run / "metrics/feature_extractor.keras").is_file()
    again = runner.invoke(cli, ["evaluate-gan", str(run), "--num-images", "200",
                                "--extractor", "classifier"])
    assert again.exit_code == 0
    assert json.loads((run / "gan_metrics.json").read_text())["fid"] == pytest.approx(scores["fid"])
    bad = runner.invoke(cli, ["evaluate-gan", str(tmp_path)])
    assert bad.exit_code == 1 and "is not a finished train-gan run folder" in bad.output


def test_score_generator_scores_objects_in_memory_and_keeps_its_classifier(tmp_path):
    data = load_dataset("digits", image_size=16, validation_split=0.0, seed=0)
    generator = build_generator(16, 1, latent_dim=4, width=0.125, kernel_size=3)
    scores = score_generator(generator, data, num_images=60, extractor="classifier", seed=1,
                             metrics_dir=tmp_path / "metrics")
    assert (scores["real_images"], scores["generated_images"]) == (60, 60)
    assert scores["fid"] > 0 and "train_accuracy" in scores["extractor_info"]
    again = score_generator(generator, data, num_images=60, extractor="classifier", seed=1,
                            metrics_dir=tmp_path / "metrics")
    assert "cached" in again["extractor_info"] and again["fid"] == pytest.approx(scores["fid"])


def test_a_corrupt_cached_extractor_is_trained_again_not_a_traceback(tmp_path, caplog):
    data = load_dataset("digits", image_size=16, validation_split=0.0, seed=0)
    generator = build_generator(16, 1, latent_dim=4, width=0.125, kernel_size=3)
    (tmp_path / "metrics").mkdir()
    cached = tmp_path / "metrics/feature_extractor.keras"
    cached.write_bytes(b"PK\x03\x04 not a keras file")  # what a killed write could leave
    with caplog.at_level("WARNING", logger="gantransfer.workflows.scoring"):
        scores = score_generator(generator, data, num_images=60, extractor="classifier", seed=1,
                                 metrics_dir=tmp_path / "metrics")
    assert "cannot be read" in caplog.text and "train_accuracy" in scores["extractor_info"]
    keras.saving.load_model(cached, compile=False)  # replaced by a good one


def test_a_feature_classifier_is_trained_once_for_the_same_images_and_labels(tmp_path, monkeypatch,
                                                                            caplog):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    trained = []
    real_training = extractors.train_feature_extractor

    def counting(*args, **kwargs):
        trained.append(args[1].tolist())
        return real_training(*args, **kwargs)

    monkeypatch.setattr(extractors, "train_feature_extractor", counting)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 8, 8, 1)).astype("uint8")
    labels = np.arange(24) % 3
    first, info = classifier_extractor(images, labels, 3)
    again, cached = classifier_extractor(images, labels, 3)
    assert len(trained) == 1 and "cached" not in info
    assert cached["train_accuracy"] == info["train_accuracy"] and cached["cached"].endswith(".keras")
    np.testing.assert_array_equal(features(first, images), features(again, images))
    # Other labels (or images) are another classifier, and so is another seed of the recipe.
    classifier_extractor(images, labels[::-1].copy(), 3)
    assert len(trained) == 2
    assert len(list((tmp_path / "cache/gantransfer/feature-classifiers").glob("*.keras"))) == 2
    other_images = images.copy()
    other_images[0, 0, 0, 0] ^= 1
    names = {classifier_fingerprint(images, labels, 3),
             classifier_fingerprint(other_images, labels, 3),
             classifier_fingerprint(images, labels, 3, seed=1),
             classifier_fingerprint(images, labels, 3, epochs=5),
             classifier_fingerprint(images.astype("float32"), labels, 3)}
    assert len(names) == 5
    # A file a killed write left unreadable is trained again and replaced, with a warning.
    kept = Path(cached["cached"])
    kept.write_bytes(b"PK\x03\x04 not a keras file")
    with caplog.at_level("WARNING", logger="gantransfer.gan.extractors"):
        _, info = classifier_extractor(images, labels, 3)
    assert "cannot be read" in caplog.text and len(trained) == 3 and "cached" not in info
    keras.saving.load_model(kept, compile=False)
    # A cache that cannot be written costs a warning and a training next time, never the scores.
    (tmp_path / "blocked").write_text("a file where the cache's folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "blocked"))
    caplog.clear()
    with caplog.at_level("WARNING", logger="gantransfer.gan.extractors"):
        model, info = classifier_extractor(images, labels, 3)
    assert "cannot be kept" in caplog.text and "train_accuracy" in info
    assert features(model, images).shape == (24, 128)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_images": 1}, "num_images: received 1, expected an integer >= 2"),
    ({"extractor": "vgg"}, "extractor: received 'vgg', expected one of auto, classifier"),
    ({"size": 8}, r"makes \(8, 8, 1\) images but dataset 'digits' holds \(16, 16, 1\)"),
])
def test_score_generator_refuses_bad_input_before_any_work(kwargs, message):
    data = load_dataset("digits", image_size=16, validation_split=0.0, seed=0)
    generator = build_generator(kwargs.pop("size", 16), 1, latent_dim=4, width=0.125)
    with pytest.raises(GantransferError, match=message):
        score_generator(generator, data, **kwargs)


def test_kid_has_a_spread_even_when_a_set_is_no_larger_than_a_subset():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(300, 8)), rng.normal(size=(300, 8)) + 0.3
    mean, std = kernel_inception_distance(real, fake, subsets=10, subset_size=1000)
    assert std > 0 and mean > 0  # 10 different halves, not 10 orderings of the same 300
    _, larger = kernel_inception_distance(rng.normal(size=(3000, 8)), rng.normal(size=(3000, 8)),
                                          subsets=10, subset_size=1000)
    assert larger > 0
