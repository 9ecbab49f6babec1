"""FGSM and PGD on real classifiers: a tiny CNN trained on the digits, and a linear probe's export."""

import keras
import numpy as np
import pytest

from gantransfer.data import load_dataset
from gantransfer.errors import ConfigError
from gantransfer.robustness import AttackSettings, adversarial_examples, robust_accuracy
from gantransfer.robustness.attacks import _losses_and_gradients
from gantransfer.transfer_learning.classifiers import build_classifier
from gantransfer.transfer_learning.probe import fit_probe_cv, pixel_features, probe_as_keras
from gantransfer.transfer_learning.trunks import TrunkArchitecture, build_gan_trunk

FGSM = AttackSettings("fgsm")
PGD = AttackSettings("pgd", steps=10)


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits", image_size=16, seed=0)
    x_train, y_train = data.train.x, data.train.y
    x_test, y_test = data.test.x[:200].astype("float32"), data.test.y[:200]
    return x_train.astype("float32"), y_train, x_test, y_test


@pytest.fixture(scope="module")
def cnn(digits):
    """A tiny CNN trained on the digits: undefended, and well above chance."""
    x_train, y_train, x_test, y_test = digits
    keras.utils.set_random_seed(0)
    model = build_classifier(build_gan_trunk(TrunkArchitecture(16, 1, width=0.125, kernel_size=3)),
                             10, kind="flatten", trunk_training=None)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train, y_train, epochs=8, batch_size=64, verbose=0)
    accuracy = float(np.mean(model.predict(x_test, verbose=0).argmax(-1) == y_test))
    assert accuracy > 0.8, accuracy
    return model


def test_fgsm_raises_the_loss_on_every_batch(cnn, digits):
    *_, x, y = digits
    for start in range(0, len(x), 50):
        xb, yb = x[start:start + 50], y[start:start + 50]
        adversarial, _ = adversarial_examples(cnn, xb, yb, 0.03, FGSM)
        clean_loss, _ = _losses_and_gradients(cnn, xb, yb)
        attacked_loss, _ = _losses_and_gradients(cnn, adversarial, yb)
        assert attacked_loss.mean() > clean_loss.mean()


@pytest.mark.parametrize("settings", [FGSM, PGD], ids=["fgsm", "pgd"])
def test_epsilon_zero_changes_nothing(cnn, digits, settings):
    *_, x, y = digits
    adversarial, _ = adversarial_examples(cnn, x, y, 0.0, settings)
    np.testing.assert_array_equal(adversarial, x)
    (point,) = robust_accuracy(cnn, x, y, [0.0], settings)
    assert point.accuracy == pytest.approx(np.mean(cnn.predict(x, verbose=0).argmax(-1) == y))


@pytest.mark.parametrize("settings", [FGSM, PGD], ids=["fgsm", "pgd"])
@pytest.mark.parametrize("epsilon", [0.02, 0.3])
def test_perturbations_stay_within_epsilon_and_the_pixel_range(cnn, digits, settings, epsilon):
    *_, x, y = digits
    adversarial, _ = adversarial_examples(cnn, x[:64], y[:64], epsilon, settings)
    assert np.abs(adversarial - x[:64]).max() <= epsilon * 255 + 1e-3
    assert adversarial.min() >= 0 and adversarial.max() <= 255
    assert np.abs(adversarial - x[:64]).max() > 0.5 * epsilon * 255  # it did move the pixels


def test_pgd_is_at_least_as_strong_as_fgsm(cnn, digits):
    *_, x, y = digits
    for epsilon in (0.02, 0.05, 0.1):
        (fgsm,) = robust_accuracy(cnn, x, y, [epsilon], FGSM)
        (pgd,) = robust_accuracy(cnn, x, y, [epsilon], PGD)
        assert pgd.accuracy <= fgsm.accuracy, epsilon
        assert pgd.mean_loss >= fgsm.mean_loss - 1e-6, epsilon
    assert pgd.accuracy < fgsm.accuracy  # at 0.1 the iterations find more than one step does


def test_a_large_epsilon_drives_an_undefended_model_to_chance(cnn, digits):
    *_, x, y = digits
    clean, attacked = robust_accuracy(cnn, x, y, [0.0, 0.3], PGD)
    assert clean.accuracy > 0.8
    assert attacked.accuracy <= 0.1  # ten classes: chance is 0.1
    assert attacked.zero_gradient_images == 0


def test_a_linear_probe_export_can_be_attacked(digits):
    x_train, y_train, x, y = digits
    outcome = fit_probe_cv((pixel_features(x_train[:300]), y_train[:300]), Cs=[0.01, 0.1], folds=3)
    probe = probe_as_keras(outcome.model, x.shape[1:], 10)
    clean, attacked = robust_accuracy(probe, x, y, [0.0, 0.1], FGSM)
    assert clean.accuracy > 0.8
    assert attacked.accuracy < clean.accuracy - 0.3


def test_zero_gradients_are_counted_not_taken_for_robustness(digits):
    *_, x, y = digits
    flat = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Flatten(),
                             keras.layers.Dense(10, kernel_initializer="zeros")])
    (point,) = robust_accuracy(flat, x[:20], y[:20], [0.1], FGSM)
    assert point.zero_gradient_images == 20
    adversarial, zero = adversarial_examples(flat, x[:20], y[:20], 0.1, FGSM)
    assert zero.all() and np.array_equal(adversarial, x[:20])


def test_restarts_keep_the_strongest_try(cnn, digits):
    *_, x, y = digits
    (one,) = robust_accuracy(cnn, x[:100], y[:100], [0.03], AttackSettings("pgd", steps=3))
    (three,) = robust_accuracy(cnn, x[:100], y[:100], [0.03],
                               AttackSettings("pgd", steps=3, restarts=3))
    assert three.accuracy <= one.accuracy


@pytest.mark.parametrize("call, message", [
    (lambda m, x, y: adversarial_examples(m, x, y, -0.1), "[0, 1] pixel scale"),
    (lambda m, x, y: adversarial_examples(m, x, y, 0.1, AttackSettings("deepfool")), "fgsm, pgd"),
    (lambda m, x, y: adversarial_examples(m, x[:, :8, :8], y, 0.1), "shape (16, 16, 1)"),
    (lambda m, x, y: robust_accuracy(m, x, y, []), "at least one"),
    (lambda m, x, y: AttackSettings("pgd", steps=0), "steps"),
])
def test_bad_input_is_one_clear_error(cnn, digits, call, message):
    *_, x, y = digits
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        call(cnn, x[:4], y[:4])


def test_a_saturated_softmax_is_attacked_along_the_logit_margin():
    # Class 0's logit is about 12,500 above the rest: in float32 the softmax is exactly 1 and the
    # cross-entropy's gradient exactly 0. The margin's gradient still moves every image.
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Flatten(), keras.layers.Dense(10)])
    kernel = np.zeros((16, 10), "float32")
    kernel[:, 0] = 1000.0
    model.layers[-1].set_weights([kernel, np.zeros(10, "float32")])
    x = np.full((6, 4, 4, 1), 200.0, "float32")
    y = np.zeros(6, "int64")
    losses, gradient = _losses_and_gradients(model, x, y)
    assert (losses == 0).all() and (gradient != 0).all()
    adversarial, zero = adversarial_examples(model, x, y, 0.1, FGSM)
    assert not zero.any()
    np.testing.assert_allclose(adversarial, x - 25.5, atol=1e-3)  # down: against class 0
