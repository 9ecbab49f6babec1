"""Adversarial training on real digits: fresh examples every step, and robustness it buys."""

import keras
import numpy as np
import pytest

from gantransfer.data import load_dataset
from gantransfer.errors import ConfigError
from gantransfer.robustness import AttackSettings, robust_accuracy
from gantransfer.robustness.training import (AdversarialTraining, AdversariallyTrained,
                                             adversarially_trained, plain)
from gantransfer.transfer_learning.classifiers import build_classifier
from gantransfer.transfer_learning.trunks import TrunkArchitecture, build_gan_trunk


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits", image_size=16, seed=0)
    return (data.train.x.astype("float32"), data.train.y, data.test.x.astype("float32"),
            data.test.y)


def _classifier(training, seed=0):
    keras.utils.set_random_seed(seed)
    base = build_classifier(build_gan_trunk(TrunkArchitecture(16, 1, width=0.125, kernel_size=3)),
                            10, kind="flatten", trunk_training=None)
    model = adversarially_trained(base, training, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


class Counting(AdversariallyTrained):
    """Counts the adversarial batches it makes, in a variable the compiled step updates."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.made = keras.Variable(0, dtype="int32", trainable=False, name="made")

    def adversarial_batch(self, x, y):
        self.made.assign_add(1)
        return super().adversarial_batch(x, y)


def test_examples_are_made_afresh_at_every_step_against_the_current_weights(digits):
    x, y, *_ = digits
    inputs = keras.Input((16, 16, 1))
    outputs = keras.layers.Dense(10)(keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs)))
    model = Counting(inputs, outputs, training=AdversarialTraining("pgd", 0.05, steps=3))
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = keras.ops.convert_to_numpy(model.adversarial_batch(x[:32], y[:32]))
    model.made.assign(0)
    model.fit(x[:256], y[:256], batch_size=32, epochs=2, verbose=0)
    assert int(model.made.numpy()) == 2 * 256 // 32  # one adversarial batch per training step
    # Without a random start the examples depend only on the weights: after training they differ.
    model.adversarial = AdversarialTraining("fgsm", 0.05)
    again = keras.ops.convert_to_numpy(model.adversarial_batch(x[:32], y[:32]))
    assert np.abs(again - x[:32]).max() <= 0.05 * 255 + 1e-3
    assert not np.allclose(again, before)


def test_a_fraction_replaces_only_that_share_of_the_batch(digits):
    x, y, *_ = digits
    model = _classifier(AdversarialTraining("fgsm", 0.1, fraction=0.25))
    batch = keras.ops.convert_to_numpy(model.adversarial_batch(x[:16], y[:16]))
    changed = np.abs(batch - x[:16]).reshape(16, -1).max(axis=1) > 0
    assert changed[:4].all() and not changed[4:].any()


def test_pgd_training_makes_the_model_robust_where_plain_training_does_not(digits):
    x, y, x_test, y_test = digits
    attack = AttackSettings("pgd", steps=10)
    scores = {}
    for name, training in (("plain", None), ("pgd", AdversarialTraining("pgd", 0.1, steps=5))):
        model = _classifier(training)
        model.fit(x, y, batch_size=64, epochs=10, verbose=0)
        clean, attacked = robust_accuracy(plain(model), x_test, y_test, [0.0, 0.1], attack)
        scores[name] = (clean.accuracy, attacked.accuracy)
    assert scores["plain"][0] > 0.85 and scores["pgd"][0] > 0.6  # both learned the digits
    assert scores["plain"][1] < 0.2
    assert scores["pgd"][1] > scores["plain"][1] + 0.2, scores


def test_the_plain_twin_is_an_ordinary_model_with_the_same_predictions(digits, tmp_path):
    x, y, x_test, _ = digits
    model = _classifier(AdversarialTraining("fgsm", 0.1))
    model.fit(x[:128], y[:128], batch_size=32, epochs=1, verbose=0)
    twin = plain(model)
    assert type(twin) is keras.Model or type(twin).__name__ == "Functional"
    twin.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(x_test[:20], verbose=0),
                               model.predict(x_test[:20], verbose=0), rtol=1e-5, atol=1e-5)
    assert adversarially_trained(twin, AdversarialTraining("none")) is twin


@pytest.mark.parametrize("settings, message", [
    (dict(method="trades"), "none, fgsm, pgd"),
    (dict(method="pgd", epsilon=0.0), "adversarial_epsilon"),
    (dict(method="pgd", steps=0), "adversarial_steps"),
    (dict(method="fgsm", fraction=1.5), "adversarial_fraction"),
])
def test_bad_settings_are_one_clear_error(settings, message):
    with pytest.raises(ConfigError, match=message):
        AdversarialTraining(**settings)
