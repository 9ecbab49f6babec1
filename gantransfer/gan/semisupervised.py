"""The semi-supervised GAN of Salimans et al. (2016): a classifier that is its own discriminator.

"Improved Techniques for Training GANs" (section 5) turns a K-class classifier into the
discriminator of a GAN. Its K logits ``l`` give the classes; whether an image is real is read from
the same logits, as if a (K+1)-th "generated" class had logit 0: ``D(x) = Z / (Z + 1)`` with
``Z = sum(exp(l))``. The classifier then learns from three batches each step: labeled images (the
usual cross-entropy), unlabeled real images (called real) and generated ones (called generated).
The generator learns by feature matching: the mean of the classifier's features on its images is
pulled towards their mean on real images. With few labels, the unlabeled images and the game shape
the features, and the labels only name the classes.

:class:`SemiSupervisedGAN` is a :class:`~gantransfer.gan.dcgan.DCGAN` whose discriminator is such a
classifier; the backend's step (:func:`gantransfer.backend.gan_train_step`) trains it unchanged,
on TensorFlow and on JAX. :class:`SemiSupervisedBatches` feeds ``fit`` its batches, and
:class:`FinalDecay` is the authors' learning-rate schedule.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from gantransfer.gan.dcgan import DCGAN


def real_logit(class_logits) -> Any:
    """The logit of "real" that K class logits imply when the generated class's logit is 0:
    ``log(sum(exp(l)))``, so that ``sigmoid`` of it is ``Z / (Z + 1)``.

    Example:
        >>> float(ops.convert_to_numpy(real_logit(np.zeros((1, 2), "float32")))[0])  # log(2)
        0.6931471824645996
    """
    return ops.logsumexp(ops.cast(class_logits, "float32"), axis=-1)


@keras.saving.register_keras_serializable(package="gantransfer")
class FinalDecay(keras.optimizers.schedules.LearningRateSchedule):
    """A learning rate held at ``rate``, then falling linearly towards 0 over the last ``fraction``
    of ``steps``: the schedule of Salimans et al.'s code (openai/improved-gan, CIFAR-10: the last
    third of its epochs). ``fraction`` 0 keeps the rate constant.

    Example:
        >>> decay = FinalDecay(0.3, steps=6, fraction=0.5)
        >>> [round(float(decay(step)), 2) for step in range(6)]
        [0.3, 0.3, 0.3, 0.3, 0.2, 0.1]
    """

    def __init__(self, rate: float, steps: int, fraction: float) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError(f"fraction: received {fraction}, expected a number in [0, 1]")
        self.rate, self.steps, self.fraction = float(rate), int(steps), float(fraction)

    def __call__(self, step) -> Any:
        if self.fraction == 0:
            return ops.convert_to_tensor(self.rate, "float32")
        left = (self.steps - ops.cast(step, "float32")) / (self.steps * self.fraction)
        return self.rate * ops.clip(left, 0.0, 1.0)

    def get_config(self) -> dict[str, Any]:
        return {"rate": self.rate, "steps": self.steps, "fraction": self.fraction}


class SemiSupervisedGAN(DCGAN):
    """A generator and a K-class classifier trained as a GAN, and the classifier on labels too.

    The classifier takes pixels in [0, 255] (the toolkit's classifiers do); the generator's images,
    in [-1, 1], are mapped into that range before it sees them. Each step's batch (from
    :class:`SemiSupervisedBatches`) is ``((unlabeled, labeled), labels)``; the generator makes as
    many images as there are unlabeled ones.

    The classifier's loss is the labeled batch's cross-entropy plus ``unlabeled_weight`` times the
    GAN loss of :func:`real_logit` on the unlabeled and the generated batch; the generator's is
    the squared distance between the mean ``features`` (an intermediate output of the classifier)
    of the unlabeled and of the generated batch (feature matching).

    Metrics: ``d_loss``, ``g_loss``, ``d_real``, ``d_fake`` (the mean ``D(x)`` of the unlabeled and
    generated batches), ``supervised_loss`` and ``labeled_accuracy`` (of the labeled batches, under
    whatever augmentation and dropout the classifier trains with).

    Args:
        generator: Maps ``(batch, latent_dim)`` noise to images in [-1, 1].
        discriminator: Maps pixels in [0, 255] to ``[logits, features]``: the classifier's
            ``(batch, num_classes)`` logits, and the intermediate output (its trunk's, before the
            head) that feature matching compares.
        latent_dim: Length of z; read from the generator's input when omitted.
        seed: Seed of the model's own noise stream.
        unlabeled_weight: The GAN loss's weight beside the cross-entropy's 1. The paper's code
            (openai/improved-gan) weighs it 0.5.

    Example:
        >>> from gantransfer.gan.models import build_generator
        >>> inputs = keras.Input((8, 8, 1))
        >>> features = keras.layers.Flatten()(inputs)
        >>> discriminator = keras.Model(inputs, [keras.layers.Dense(3)(features), features])
        >>> gan = SemiSupervisedGAN(build_generator(8, 1, latent_dim=4, width=0.125),
        ...                         discriminator, seed=0)
        >>> gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        ...             g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
        >>> batches = SemiSupervisedBatches(np.zeros((8, 8, 8, 1)), np.zeros((4, 8, 8, 1)),
        ...                                 np.arange(4) % 3, batch_size=4, seed=0)
        >>> history = gan.fit(batches, epochs=1, verbose=0)
        >>> sorted(history.history)
        ['d_fake', 'd_loss', 'd_real', 'g_loss', 'labeled_accuracy', 'supervised_loss']
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model,
                 latent_dim: int | None = None, seed: int | None = None,
                 unlabeled_weight: float = 1.0, **kwargs: Any) -> None:
        super().__init__(generator, discriminator, latent_dim=latent_dim, seed=seed, **kwargs)
        self.unlabeled_weight = float(unlabeled_weight)
        self.supervised_tracker = keras.metrics.Mean(name="supervised_loss")
        self.labeled_accuracy_tracker = keras.metrics.Mean(name="labeled_accuracy")

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return super().metrics + [self.supervised_tracker, self.labeled_accuracy_tracker]

    @staticmethod
    def real_batch(data) -> Any:
        (unlabeled, _), _ = data
        return unlabeled

    def step_losses(self, data, noise) -> tuple[Any, Any, dict[str, Any]]:
        (unlabeled, labeled), labels = data
        fake = (self.generator(noise, training=True) + 1.0) * 127.5  # the classifier's pixels
        labeled_logits, _ = self.discriminator(labeled, training=True)
        real_logits, real_features = self.discriminator(unlabeled, training=True)
        fake_logits, fake_features = self.discriminator(fake, training=True)
        labeled_logits = ops.cast(labeled_logits, "float32")
        supervised = ops.mean(keras.losses.sparse_categorical_crossentropy(
            labels, labeled_logits, from_logits=True))
        real, fake = real_logit(real_logits), real_logit(fake_logits)
        # -log D(x) on real images and -log(1 - D(G(z))) on generated ones, D = sigmoid(real_logit)
        unsupervised = ops.mean(ops.softplus(-real)) + ops.mean(ops.softplus(fake))
        flat = lambda f: ops.reshape(ops.cast(f, "float32"), (ops.shape(f)[0], -1))  # noqa: E731
        matching = ops.mean(ops.square(ops.mean(flat(real_features), axis=0)
                                       - ops.mean(flat(fake_features), axis=0)))
        accuracy = ops.mean(ops.cast(
            ops.argmax(labeled_logits, axis=-1) == ops.cast(labels, "int32"), "float32"))
        return supervised + self.unlabeled_weight * unsupervised, matching, {
            "real_logits": real, "fake_logits": fake, "supervised_loss": supervised,
            "labeled_accuracy": accuracy}

    def update_metrics(self, d_loss, g_loss, measures: dict[str, Any]) -> dict[str, Any]:
        self.supervised_tracker.update_state(measures["supervised_loss"])
        self.labeled_accuracy_tracker.update_state(measures["labeled_accuracy"])
        return super().update_metrics(d_loss, g_loss, measures)

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError("a SemiSupervisedGAN is not saved whole; save its classifier")


class SemiSupervisedBatches(keras.utils.PyDataset):
    """The batches a :class:`SemiSupervisedGAN` trains on: ``((unlabeled, labeled), labels)``.

    An epoch is one pass over the unlabeled images, in a new order each epoch; each step also draws
    ``batch_size`` labeled images (with their labels) at random, with replacement, so the few
    labeled images are seen many times an epoch. Both orders come from ``seed``.

    Example:
        >>> batches = SemiSupervisedBatches(np.zeros((10, 2, 2, 1)), np.ones((3, 2, 2, 1)),
        ...                                 np.arange(3), batch_size=4, seed=0)
        >>> len(batches), [a.shape for a in batches[0][0]], batches[0][1].shape
        (2, [(4, 2, 2, 1), (4, 2, 2, 1)], (4,))
    """

    def __init__(self, unlabeled: np.ndarray, labeled: np.ndarray, labels: np.ndarray, *,
                 batch_size: int, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if len(unlabeled) < batch_size:
            raise ValueError(f"batch_size: received {batch_size}, more than the {len(unlabeled)} "
                             "unlabeled images")
        self.unlabeled = unlabeled
        self.labeled = labeled
        self.labels = np.asarray(labels)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self._draw()

    def _draw(self) -> None:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.order = rng.permutation(len(self.unlabeled))
        self.picks = rng.integers(0, len(self.labeled), (len(self), self.batch_size))

    def __len__(self) -> int:
        return len(self.unlabeled) // self.batch_size  # full batches: the noise matches each

    def __getitem__(self, index: int) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        picks = self.picks[index]
        return ((np.asarray(self.unlabeled[rows], "float32"),
                 np.asarray(self.labeled[picks], "float32")), self.labels[picks])

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._draw()

