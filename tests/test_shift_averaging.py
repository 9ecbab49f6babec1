"""Test-time shifts (transfer.test_shift): the averaged model, and a transfer run that uses it."""

import keras
import numpy as np
import pytest

import gantransfer as gt
from gantransfer.config import TransferConfig, load_config
from gantransfer.data.transforms import shift_images
from gantransfer.errors import ConfigError
from gantransfer.transfer_learning.classifiers import (LogMeanSoftmax, PixelShift,
                                                       build_classifier, first_member,
                                                       shift_averaged)
from gantransfer.transfer_learning.probe import SHIFT_DIRECTIONS
from gantransfer.transfer_learning.protocol import run_transfer
from gantransfer.transfer_learning.trunks import TrunkArchitecture, build_gan_trunk

ARCH = TrunkArchitecture(32, 1, width=0.125, kernel_size=3)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("dy, dx", [(1, 0), (-1, 0), (0, 1), (0, -1), (2, -3), (-2, 0)])
def test_the_shift_layer_moves_images_as_the_probes_copies_are_moved(dy, dx):
    x = np.random.default_rng(0).uniform(0, 255, (3, 7, 9, 2)).astype("float32")
    np.testing.assert_array_equal(np.asarray(PixelShift(dy, dx)(x)), shift_images(x, dy, dx))


@pytest.mark.parametrize("shift", [1, 2])
def test_a_shift_averaged_model_predicts_the_mean_softmax_over_the_moved_images(shift):
    keras.utils.set_random_seed(0)
    net = build_classifier(build_gan_trunk(ARCH), 10)
    x = np.random.default_rng(1).uniform(0, 255, (6, 32, 32, 1)).astype("float32")
    views = [x] + [shift_images(x, dy * d, dx * d)
                   for d in range(1, shift + 1) for dy, dx in SHIFT_DIRECTIONS]
    expected = np.mean([_softmax(net.predict(v, verbose=0)) for v in views], axis=0)

    averaged = shift_averaged(net, shift)
    got = averaged.predict(x, verbose=0)
    np.testing.assert_allclose(np.exp(got), expected, rtol=1e-4, atol=1e-6)
    assert sum(isinstance(layer, PixelShift) for layer in averaged.layers) == 4 * shift
    assert averaged.count_params() == net.count_params() and first_member(averaged) is net
    with pytest.raises(ValueError, match="shift must be >= 1 pixel"):
        shift_averaged(net, 0)


def test_a_transfer_run_with_test_shifts_saves_reports_and_attacks_the_averaged_model(
        tmp_path, monkeypatch):
    digits = gt.load_dataset("digits", image_size=32, validation_split=0.0, seed=0)
    # Enough epochs that each model learns something an attack can take away, whatever the seed
    # of its shuffles: a model at chance level may lose nothing to FGSM.
    settings = TransferConfig(learning_rates=[1e-2], max_epochs=10, patience=3, batch_size=16,
                              probe_c=[0.1], bn_images=100, cv_folds=2, test_shift=1,
                              robustness=[0.0, 0.05], robustness_method="fgsm", robustness_images=40)
    run = run_transfer(digits.with_label_budget(6, seed=0), ["scratch", "pixels-linear"], [3], 1,
                       settings, architecture=ARCH, models_dir=tmp_path)
    test = digits.test
    x_test = test.load(np.arange(len(test))).astype("float32")
    # In a fresh interpreter the toolkit's layers are not registered: load_classifier brings them.
    registered = keras.saving.get_custom_objects()
    for name in ("gantransfer>PixelShift", "gantransfer>LogMeanSoftmax"):
        monkeypatch.delitem(registered, name)
    for result in run.results:
        assert result.status == "ok"
        assert any(note.startswith("test-time shifts (transfer.test_shift): each prediction is "
                                   "the mean of the softmax over the image and 4 copies")
                   for note in result.notes)
        saved = gt.load_classifier(result.model_file)
        assert any(isinstance(layer, LogMeanSoftmax) for layer in saved.layers)
        outputs = saved.predict(x_test, verbose=0)
        np.testing.assert_allclose(np.exp(outputs).sum(axis=1), 1.0, rtol=1e-4)
        # The reported accuracy is the saved averaged model's, not the unmoved images' alone.
        assert np.mean(outputs.argmax(axis=1) == test.y) == pytest.approx(result.test_accuracy)
        # The attacked model is the averaged one, and the attack's gradient flows through the
        # moves and the mean.
        clean = np.mean(outputs[:40].argmax(axis=1) == test.y[:40])
        assert clean >= 0.3, (result.strategy, clean)  # well above chance: something to attack
        assert result.robust_accuracy["0"] == pytest.approx(clean)
        assert result.robust_accuracy["0.05"] < clean


def test_a_negative_test_shift_is_one_clear_error():
    with pytest.raises(ConfigError, match=r"transfer.test_shift.*an integer >= 0 \(pixels; 0 is off\)"):
        load_config(None, ["transfer.test_shift=-1"])
