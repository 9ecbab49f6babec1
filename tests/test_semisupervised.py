"""The semi-supervised GAN: its losses against their formulas, its batches, and training that
learns the classes from a few labels."""

import keras
import numpy as np
import pytest

from gantransfer.gan.models import build_generator
from gantransfer.gan.semisupervised import (FinalDecay, SemiSupervisedBatches, SemiSupervisedGAN,
                                            real_logit)


def _softplus(x):
    return np.logaddexp(0.0, x)


def _tiny(num_classes=3, side=8, seed=0, rate=2e-4, unlabeled_weight=1.0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((side, side, 1))
    features = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255.0)(inputs))
    logits = keras.layers.Dense(num_classes)(features)
    gan = SemiSupervisedGAN(build_generator(side, 1, latent_dim=4, width=0.125),
                            keras.Model(inputs, [logits, features]), seed=seed,
                            unlabeled_weight=unlabeled_weight)
    gan.compile(d_optimizer=keras.optimizers.Adam(rate, beta_1=0.5),
                g_optimizer=keras.optimizers.Adam(rate, beta_1=0.5))
    return gan


def test_real_logit_is_the_log_of_the_summed_class_exponentials():
    logits = np.array([[0.0, 0.0], [2.0, -1.0], [-30.0, -30.0]], "float32")
    d = 1 / (1 + np.exp(-keras.ops.convert_to_numpy(real_logit(logits))))
    z = np.exp(logits).sum(axis=1)
    np.testing.assert_allclose(d, z / (z + 1), rtol=1e-5)  # D(x) = Z / (Z + 1)


@pytest.mark.parametrize("weight", [1.0, 0.5, 0.0])  # 0.5: the paper's code
def test_the_step_losses_are_salimans_formulas(weight):
    gan = _tiny(unlabeled_weight=weight)
    rng = np.random.default_rng(0)
    unlabeled = rng.uniform(0, 255, (6, 8, 8, 1)).astype("float32")
    labeled = rng.uniform(0, 255, (6, 8, 8, 1)).astype("float32")
    labels = np.array([0, 1, 2, 0, 1, 2])
    noise = rng.normal(size=(6, 4)).astype("float32")
    d_loss, g_loss, measures = gan.step_losses(((unlabeled, labeled), labels), noise)

    # the same quantities computed here from the networks' outputs (all layers deterministic)
    fake = (keras.ops.convert_to_numpy(gan.generator(noise, training=True)) + 1) * 127.5
    out = lambda x: [keras.ops.convert_to_numpy(t) for t in gan.discriminator(x)]  # noqa: E731
    (l_lab, _), (l_real, f_real), (l_fake, f_fake) = out(labeled), out(unlabeled), out(fake)
    shifted = l_lab - l_lab.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    supervised = -log_softmax[np.arange(6), labels].mean()
    lse = lambda l: np.log(np.exp(l).sum(axis=1))  # noqa: E731
    unsupervised = _softplus(-lse(l_real)).mean() + _softplus(lse(l_fake)).mean()
    matching = np.mean((f_real.mean(axis=0) - f_fake.mean(axis=0)) ** 2)
    assert unsupervised > 0.1  # so that the weight shows
    assert float(d_loss) == pytest.approx(supervised + weight * unsupervised, rel=1e-4)
    assert float(g_loss) == pytest.approx(matching, rel=1e-4)
    assert float(measures["supervised_loss"]) == pytest.approx(supervised, rel=1e-4)
    accuracy = np.mean(l_lab.argmax(axis=1) == labels)
    assert float(measures["labeled_accuracy"]) == pytest.approx(accuracy)


def test_the_batches_pass_over_every_unlabeled_image_once_an_epoch_in_a_new_order():
    unlabeled = np.arange(10, dtype="float32").reshape(10, 1, 1, 1)
    labeled = 100 + np.arange(3, dtype="float32").reshape(3, 1, 1, 1)
    batches = SemiSupervisedBatches(unlabeled, labeled, np.array([0, 1, 2]), batch_size=3, seed=0)
    assert len(batches) == 3  # full batches only: 9 of the 10 images an epoch

    def epoch():
        seen = [batches[i] for i in range(len(batches))]
        return (np.concatenate([u.ravel() for (u, _), _ in seen]),
                np.concatenate([l.ravel() for (_, l), _ in seen]),
                np.concatenate([y for _, y in seen]))

    first, labeled_first, labels_first = epoch()
    assert len(set(first)) == 9 and set(first) <= set(range(10))
    assert set(labeled_first) <= {100.0, 101.0, 102.0}
    np.testing.assert_array_equal(labels_first, labeled_first - 100)  # each image with its label
    batches.on_epoch_end()
    second, _, _ = epoch()
    assert len(set(second)) == 9 and not np.array_equal(first, second)
    again = SemiSupervisedBatches(unlabeled, labeled, np.array([0, 1, 2]), batch_size=3, seed=0)
    np.testing.assert_array_equal(again[0][0][0], SemiSupervisedBatches(
        unlabeled, labeled, np.array([0, 1, 2]), batch_size=3, seed=0)[0][0][0])
    with pytest.raises(ValueError, match="batch_size: received 11, more than the 10"):
        SemiSupervisedBatches(unlabeled, labeled, np.array([0, 1, 2]), batch_size=11, seed=0)


def test_fit_ends_with_the_classifiers_moving_averages_when_its_optimizer_keeps_them():
    # The discriminator's Adam keeps an EMA (use_ema), and fit's end writes it into the
    # discriminator only. Training itself is the same as without it.
    rng = np.random.default_rng(0)
    unlabeled, labeled = rng.uniform(0, 255, (12, 8, 8, 1)), rng.uniform(0, 255, (3, 8, 8, 1))
    values = lambda weights: [keras.ops.convert_to_numpy(v) for v in weights]  # noqa: E731

    def trained(use_ema):
        gan = _tiny()
        gan.compile(d_optimizer=keras.optimizers.Adam(1e-2, beta_1=0.5, use_ema=use_ema,
                                                      ema_momentum=0.5),
                    g_optimizer=keras.optimizers.Adam(1e-2, beta_1=0.5))
        gan.fit(SemiSupervisedBatches(unlabeled, labeled, np.arange(3), batch_size=4, seed=0),
                epochs=2, verbose=0)
        return gan

    plain, averaged = trained(False), trained(True)
    final = values(averaged.discriminator.trainable_weights)
    for value, average in zip(final, values(averaged.d_optimizer._model_variables_moving_average)):
        np.testing.assert_array_equal(value, average)
    last = values(plain.discriminator.trainable_weights)  # the last step's weights
    assert any(not np.allclose(a, b) for a, b in zip(final, last))
    for value, kept in zip(values(averaged.generator.trainable_weights),
                           values(plain.generator.trainable_weights)):
        np.testing.assert_allclose(value, kept, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fraction", [0.0, 1 / 3, 1.0])
def test_the_final_decay_is_the_authors_schedule(fraction):
    # openai/improved-gan (CIFAR-10): rate * min(3 - epoch / 400, 1) over 1,200 epochs.
    steps = 1200
    decay = FinalDecay(3e-4, steps=steps, fraction=fraction)
    got = np.array([float(decay(step)) for step in range(steps)])
    if fraction == 1 / 3:
        np.testing.assert_allclose(got, 3e-4 * np.minimum(3 - np.arange(steps) / 400, 1),
                                   rtol=1e-5, atol=1e-10)
    assert got[0] == pytest.approx(3e-4)  # the first step runs at the full rate
    assert np.all(np.diff(got) <= 1e-12) and np.all(got > 0)
    assert got[-1] == pytest.approx(3e-4 if fraction == 0 else 3e-4 / (steps * fraction))
    assert FinalDecay.from_config(decay.get_config()).get_config() == decay.get_config()
    with pytest.raises(ValueError, match="fraction: received 1.5"):
        FinalDecay(3e-4, steps=steps, fraction=1.5)


def test_both_optimizers_follow_the_schedule_and_end_at_its_last_rate():
    rng = np.random.default_rng(0)
    unlabeled, labeled = rng.uniform(0, 255, (12, 8, 8, 1)), rng.uniform(0, 255, (3, 8, 8, 1))
    values = lambda weights: [keras.ops.convert_to_numpy(v) for v in weights]  # noqa: E731

    def trained(rate):
        gan = _tiny()
        gan.compile(d_optimizer=keras.optimizers.Adam(rate, beta_1=0.5),
                    g_optimizer=keras.optimizers.Adam(rate, beta_1=0.5))
        gan.fit(SemiSupervisedBatches(unlabeled, labeled, np.arange(3), batch_size=4, seed=0),
                epochs=2, verbose=0)  # 3 steps a pass: 6 steps
        return gan

    decayed = trained(FinalDecay(1e-2, 6, 0.5))
    for optimizer in (decayed.d_optimizer, decayed.g_optimizer):
        assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 6
        assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == 0.0  # step 6 of 6
    constant = trained(1e-2)  # fraction 0 trains as a constant rate does; a decay does not
    unchanged = trained(FinalDecay(1e-2, 6, 0.0))
    for a, b in zip(values(constant.discriminator.weights),
                    values(unchanged.discriminator.weights)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert any(not np.allclose(a, c) for a, c in zip(values(constant.discriminator.weights),
                                                     values(decayed.discriminator.weights)))


@pytest.mark.slow
def test_it_learns_the_classes_from_a_few_labels_beside_the_unlabeled_images():
    # Three classes of 8x8 images, told apart by which third of the image is bright; 2 labels each.
    rng = np.random.default_rng(0)

    def images(classes):
        x = rng.uniform(0, 60, (len(classes), 8, 8, 1))
        for i, c in enumerate(classes):
            x[i, :, 3 * c:3 * c + 2] += 180
        return x.astype("float32")

    y_unlabeled = rng.integers(0, 3, 300)
    y_labeled, y_test = np.repeat(np.arange(3), 2), rng.integers(0, 3, 200)
    gan = _tiny(rate=1e-2)
    batches = SemiSupervisedBatches(images(y_unlabeled), images(y_labeled), y_labeled,
                                    batch_size=30, seed=0)
    history = gan.fit(batches, epochs=10, verbose=0).history
    assert history["labeled_accuracy"][-1] == 1.0
    assert all(np.isfinite(v).all() for v in history.values())
    logits, _ = gan.discriminator.predict(images(y_test), verbose=0)
    assert np.mean(logits.argmax(axis=1) == y_test) > 0.9
