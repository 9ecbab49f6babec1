"""``gantransfer attack``: the files it writes, and one clear line for each kind of bad input."""

import csv
import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gantransfer.cli import cli
from gantransfer.data import load_dataset
from gantransfer.transfer_learning.classifiers import build_classifier
from gantransfer.transfer_learning.trunks import TrunkArchitecture, build_gan_trunk


@pytest.fixture(scope="module")
def classifier_file(tmp_path_factory):
    """A tiny CNN trained on the digits at 16 px, saved as compare saves its models."""
    data = load_dataset("digits", image_size=16, seed=0)
    keras.utils.set_random_seed(0)
    model = build_classifier(build_gan_trunk(TrunkArchitecture(16, 1, width=0.125, kernel_size=3)),
                             10, kind="flatten", trunk_training=None, name="tiny_cnn")
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(data.train.x.astype("float32"), data.train.y, epochs=6, batch_size=64, verbose=0)
    path = tmp_path_factory.mktemp("models") / "tiny_cnn.keras"
    model.save(path)
    return path


def _attack(*args):
    return CliRunner().invoke(cli, ["attack", *map(str, args)])


def test_attack_writes_the_table_the_curve_and_the_picture(classifier_file, tmp_path):
    out = tmp_path / "attack"
    result = _attack(classifier_file, "--epsilons", "0,0.05,0.3", "--method", "pgd", "--steps",
                     "5", "--images", "120", "--examples", "3", "--out-dir", out)
    assert result.exit_code == 0, result.output
    assert "| 0 |" in result.output and "| 0.3 |" in result.output
    with (out / "robustness.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["epsilon"]) for r in rows] == [0.0, 0.05, 0.3]
    accuracies = [float(r["accuracy"]) for r in rows]
    assert accuracies[0] > 0.8 and accuracies[2] <= 0.1 and accuracies == sorted(accuracies)[::-1]
    assert all(int(r["images"]) == 120 for r in rows)
    record = json.loads((out / "attack.json").read_text())
    assert record["attack"]["method"] == "pgd" and record["attack"]["steps"] == 5
    assert record["picture_epsilon"] == 0.3 and record["dataset"] == "digits"
    width, height = Image.open(out / "adversarial_examples.png").size
    assert height > width  # three rows of three panels
    assert Image.open(out / "robustness.png").size[0] > 300


def test_fgsm_is_never_stronger_than_pgd_in_the_files(classifier_file, tmp_path):
    found = {}
    for method in ("fgsm", "pgd"):
        result = _attack(classifier_file, "--epsilons", "0.05", "--method", method, "--steps",
                         "10", "--images", "150", "--examples", "0", "--out-dir",
                         tmp_path / method)
        assert result.exit_code == 0, result.output
        found[method] = json.loads((tmp_path / method / "attack.json").read_text())["points"]
        assert not (tmp_path / method / "adversarial_examples.png").exists()
    assert found["pgd"][0]["accuracy"] <= found["fgsm"][0]["accuracy"]


def test_an_earlier_attack_is_never_overwritten_silently(classifier_file, tmp_path):
    out = tmp_path / "attack"
    assert _attack(classifier_file, "--epsilons", "0", "--images", "20", "--examples", "0",
                   "--out-dir", out).exit_code == 0
    before = (out / "attack.json").read_bytes()
    result = _attack(classifier_file, "--epsilons", "0.1", "--images", "20", "--out-dir", out)
    assert result.exit_code == 1 and "--overwrite" in result.output
    assert (out / "attack.json").read_bytes() == before
    assert _attack(classifier_file, "--epsilons", "0.1", "--images", "20", "--examples", "2",
                   "--out-dir", out, "--overwrite").exit_code == 0
    assert (out / "attack.json").read_bytes() != before
    assert (out / "adversarial_examples.png").is_file()
    # An overwrite that draws no picture leaves none of the earlier attack's beside its files.
    assert _attack(classifier_file, "--epsilons", "0.1", "--images", "20", "--examples", "0",
                   "--out-dir", out, "--overwrite").exit_code == 0
    assert not (out / "adversarial_examples.png").exists()
    assert sorted(p.name for p in out.iterdir()) == ["attack.json", "robustness.csv",
                                                     "robustness.png"]


def _not_a_model(tmp_path, classifier_file):
    path = tmp_path / "notes.keras"
    path.write_text("not a model")
    return [path]


def _discriminator(tmp_path, classifier_file):
    from gantransfer.gan.models import build_discriminator
    path = tmp_path / "discriminator.keras"
    build_discriminator(16, 1, width=0.125).save(path)
    return [path]


def _three_classes(tmp_path, classifier_file):
    model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    path = tmp_path / "three.keras"
    model.save(path)
    return [path]


@pytest.mark.parametrize("arguments, message", [
    (lambda tmp, f: [f, "--epsilons", "0,-0.1"], "[0, 1] pixel scale"),
    (lambda tmp, f: [f, "--epsilons", "0,small"], "separated by commas"),
    (lambda tmp, f: [f, "--steps", "0"], "steps"),
    (lambda tmp, f: [f, "--images", "0"], "--images"),
    (lambda tmp, f: _not_a_model(tmp, f), "cannot load"),
    (lambda tmp, f: _discriminator(tmp, f), "not class scores"),
    (lambda tmp, f: _three_classes(tmp, f), "predicts 3 classes"),
], ids=["negative-epsilon", "not-a-number", "no-steps", "no-images", "not-a-model",
        "discriminator", "classes-mismatch"])
def test_bad_input_is_one_clear_line(classifier_file, tmp_path, arguments, message):
    result = _attack(*arguments(tmp_path, classifier_file), "--out-dir", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 2
    assert not (tmp_path / "out" / "attack.json").exists()


def test_an_unknown_method_is_refused_by_name(classifier_file):
    result = _attack(classifier_file, "--method", "deepfool")
    assert result.exit_code == 2 and "'deepfool' is not one of 'fgsm', 'pgd'" in result.output


def test_a_runs_model_is_attacked_on_the_runs_own_test_images(tmp_path, tiny_overrides):
    """digits has no test split of its own: a run with train.seed=3 held out other images than the
    default split, and the attack must use the run's, never images the model trained on."""
    from gantransfer.config import load_config
    from gantransfer.workflows import experiment
    from gantransfer.workflows.targets import RunSplit, run_split, test_pool

    config = load_config(None, [*tiny_overrides, "data.image_size=16", "train.seed=3",
                                "transfer.strategies=pixels-linear", "transfer.seeds=1",
                                "transfer.labels_per_class=3", "transfer.cv_folds=2"])
    result = experiment.transfer(config, tmp_path / "run", verbose=False)
    model_file = tmp_path / "run" / result.results[0].model_file
    record = json.loads((tmp_path / "run/run.json").read_text())
    assert (record["test_split"], record["split_seed"]) == (0.2, 3)
    split = run_split(model_file)
    assert split == RunSplit("digits", 0.2, 3)
    model = keras.saving.load_model(model_file)
    _, pool = test_pool(model, "digits", split)
    assert pool.fingerprint() == record["test_sha256"]
    _, default_pool = test_pool(model, "digits")
    assert default_pool.fingerprint() != record["test_sha256"]  # the seed matters: a real check

    out = tmp_path / "attack"
    attacked = _attack(model_file, "--epsilons", "0", "--images", "1000", "--examples", "0",
                       "--out-dir", out)
    assert attacked.exit_code == 0, attacked.output
    saved = json.loads((out / "attack.json").read_text())
    assert saved["dataset"] == "digits" and saved["points"][0]["images"] == len(pool)
    assert saved["split"] == {"test_split": 0.2, "seed": 3}
