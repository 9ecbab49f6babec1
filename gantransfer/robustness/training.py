"""Adversarial training: each training batch attacked afresh, against the model as it is at that step.

Two recipes, both L-infinity with the budget on the [0, 1] pixel scale:

- ``pgd``: Madry et al. 2018. ``steps`` signed-gradient steps of 2.5 epsilon / steps from a random
  point of the ball, each projected back into it.
- ``fgsm``: "fast adversarial training" (Wong, Rice and Kolter 2020): one signed step of 1.25
  epsilon from a random point of the ball, projected back. Without the random start, FGSM training
  overfits to its own attack ("catastrophic overfitting").

``fraction`` of every batch is replaced by its adversarial version (Goodfellow et al. 2015 mixed
clean and adversarial losses half and half; Madry et al. trained on adversarial examples only).
The examples are made inside the training step, so they are made fresh at every step against the
current weights, and the model's weights are constants while they are made.

Example:
    >>> import keras, numpy as np
    >>> inputs = keras.Input((4, 4, 1))
    >>> outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
    >>> model = AdversariallyTrained(inputs, outputs, training=AdversarialTraining("fgsm", 0.1))
    >>> x = np.full((8, 4, 4, 1), 100.0, "float32")
    >>> adversarial = keras.ops.convert_to_numpy(model.adversarial_batch(x, np.zeros(8, "int32")))
    >>> float(np.abs(adversarial - x).max()) <= 25.5 + 1e-3
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
from keras import ops

from gantransfer import backend
from gantransfer.data.transforms import PIXEL_RANGE
from gantransfer.errors import ConfigError

TRAINING_METHODS = ("none", "fgsm", "pgd")


@dataclass(frozen=True)
class AdversarialTraining:
    """How to train on adversarial examples.

    Attributes:
        method: ``none``, ``fgsm`` (with a random start) or ``pgd``.
        epsilon: The L-infinity budget on the [0, 1] pixel scale.
        steps: PGD steps (FGSM takes one).
        fraction: The share of each batch replaced by adversarial examples, in (0, 1].
    """

    method: str = "none"
    epsilon: float = 0.1
    steps: int = 7
    fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in TRAINING_METHODS:
            raise ConfigError(f"transfer.adversarial_training: received {self.method!r}, expected "
                              f"one of {', '.join(TRAINING_METHODS)}")
        if not 0 < self.epsilon <= 1:
            raise ConfigError(f"transfer.adversarial_epsilon: received {self.epsilon}, expected a "
                              "budget in (0, 1] on the [0, 1] pixel scale")
        if self.steps < 1:
            raise ConfigError(f"transfer.adversarial_steps: received {self.steps}, expected >= 1")
        if not 0 < self.fraction <= 1:
            raise ConfigError(f"transfer.adversarial_fraction: received {self.fraction}, expected "
                              "a share in (0, 1]")

    @property
    def enabled(self) -> bool:
        return self.method != "none"

    def describe(self) -> str:
        attack = "FGSM with a random start" if self.method == "fgsm" else f"PGD-{self.steps}"
        share = "" if self.fraction == 1 else f", {self.fraction:.0%} of each batch"
        return f"adversarial training ({attack}, ε = {self.epsilon:g}{share})"


class AdversariallyTrained(keras.Model):
    """A functional classifier whose ``fit`` trains on adversarial versions of its batches.

    Prediction and evaluation are the plain model's (clean images), so early stopping and model
    selection read clean validation accuracy. :meth:`plain` gives the same layers as an ordinary
    functional model, which is what gets saved.
    """

    def __init__(self, inputs: Any, outputs: Any, *, training: AdversarialTraining,
                 value_range: tuple[float, float] = PIXEL_RANGE, seed: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(inputs, outputs, **kwargs)
        self.adversarial = training
        self.value_range = value_range
        self.seed_generator = keras.random.SeedGenerator(seed)

    def plain(self) -> keras.Model:
        """The same layers (and weights) as an ordinary functional model."""
        return keras.Model(self.input, self.output, name=self.name)

    def _loss_gradient(self, x: Any, y: Any) -> Any:
        def loss(inputs: Any) -> Any:
            logits = self(inputs, training=False)
            return ops.sum(keras.losses.sparse_categorical_crossentropy(y, logits,
                                                                       from_logits=True))

        _, gradient = backend.value_and_gradient(loss, x)
        return ops.zeros_like(x) if gradient is None else gradient

    def adversarial_batch(self, x: Any, y: Any) -> Any:
        """``x`` with its first ``fraction`` images replaced by adversarial versions."""
        low, high = self.value_range
        radius = self.adversarial.epsilon * (high - low)
        x = ops.cast(x, "float32")
        y = ops.cast(ops.reshape(y, (-1,)), "int32")
        start = keras.random.uniform(ops.shape(x), -radius, radius, seed=self.seed_generator)
        current = ops.clip(x + start, low, high)
        steps, step = ((1, 1.25 * radius) if self.adversarial.method == "fgsm"
                       else (self.adversarial.steps, 2.5 * radius / self.adversarial.steps))
        for _ in range(steps):
            current = current + step * ops.sign(self._loss_gradient(current, y))
            current = ops.clip(ops.clip(current, x - radius, x + radius), low, high)
        current = ops.stop_gradient(current)
        if self.adversarial.fraction >= 1:
            return current
        batch = ops.shape(x)[0]
        replaced = ops.cast(ops.round(self.adversarial.fraction * ops.cast(batch, "float32")),
                            "int32")
        mask = ops.reshape(ops.arange(batch) < replaced, (-1,) + (1,) * (len(x.shape) - 1))
        return ops.where(mask, current, x)

    def train_step(self, *args: Any) -> Any:
        # (data) on TensorFlow, (state, data) on JAX: the backend's trainer decides, the seam obeys.
        return backend.adversarial_train_step(self, *args)


def adversarially_trained(model: keras.Model, training: AdversarialTraining | None, *,
                          seed: int = 0) -> keras.Model:
    """``model`` as an :class:`AdversariallyTrained` model sharing its layers, or as it is when
    ``training`` is None or off."""
    if training is None or not training.enabled:
        return model
    return AdversariallyTrained(model.input, model.output, training=training, seed=seed,
                                name=model.name)


def plain(model: keras.Model) -> keras.Model:
    """An adversarially trained model's plain functional twin (same layers); others as they are."""
    return model.plain() if isinstance(model, AdversariallyTrained) else model
