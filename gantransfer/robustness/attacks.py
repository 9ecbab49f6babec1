"""Gradient attacks on classifiers: FGSM (Goodfellow et al. 2015) and L-infinity PGD (Madry et al. 2018).

Every classifier gantransfer saves maps pixels in [0, 255] to logits, linear probes included. The
attacks work in that input range, on the cross-entropy of the logits, with the budget ``epsilon``
stated on the [0, 1] scale (``epsilon=0.1`` moves each pixel by at most 25.5 of 255), and clip every
adversarial image to the valid range. The input gradient is the one backend-specific piece
(:func:`gantransfer.backend.value_and_gradient`); the rest is NumPy on batches.

Two guards keep a report from mistaking a broken attack for a robust model:

- PGD keeps, per image, the strongest of its tries and the FGSM image itself, so PGD is never weaker
  than FGSM at the same epsilon.
- Where a saturated softmax makes the cross-entropy's gradient exactly zero, the attack steps along
  the logit margin's gradient instead (Carlini and Wagner 2017). Images whose gradient is zero
  even so are counted (``zero_gradient_images``): a sign attack cannot move them, and their
  robustness is gradient masking, not a defence.

Example:
    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Rescaling(1 / 255),
    ...                           keras.layers.Flatten(), keras.layers.Dense(2)])
    >>> x = np.full((3, 4, 4, 1), 100.0, "float32")
    >>> adversarial, _ = adversarial_examples(model, x, np.array([0, 1, 0]), 0.1,
    ...                                       AttackSettings("fgsm"))
    >>> float(np.abs(adversarial - x).max()) <= 25.5 + 1e-4
    True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

from gantransfer import backend
from gantransfer.data.transforms import PIXEL_RANGE
from gantransfer.errors import ConfigError

METHODS = ("fgsm", "pgd")


@dataclass(frozen=True)
class AttackSettings:
    """How to attack: the method and, for PGD, its steps, step size, random start and restarts.

    Attributes:
        method: ``"fgsm"`` (one signed-gradient step of size epsilon) or ``"pgd"`` (projected
            gradient descent in the L-infinity ball).
        steps: PGD iterations.
        step_size: PGD step on the [0, 1] scale, as a multiple of epsilon (Madry et al.'s 2.5/steps
            when None, so that the steps can cross the ball and back).
        random_start: Start PGD at a uniform random point of the ball.
        restarts: PGD tries per image, each from a random start (or from the image without
            ``random_start``); the FGSM image is kept as one more candidate, not iterated from.
        batch_size: Images per gradient call.
        seed: Seed of the random starts.

    Example:
        >>> AttackSettings("pgd", steps=10).describe()
        'PGD-10 (random start, 1 restart, step 0.25 x epsilon)'
    """

    method: str = "pgd"
    steps: int = 20
    step_size: float | None = None
    random_start: bool = True
    restarts: int = 1
    batch_size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"attack method: received {self.method!r}, expected one of "
                              f"{', '.join(METHODS)}")
        if self.steps < 1:
            raise ConfigError(f"attack steps: received {self.steps}, expected at least 1")
        if self.restarts < 1:
            raise ConfigError(f"attack restarts: received {self.restarts}, expected at least 1")
        if self.step_size is not None and self.step_size <= 0:
            raise ConfigError(f"attack step size: received {self.step_size}, expected > 0")
        if self.batch_size < 1:
            raise ConfigError(f"attack batch size: received {self.batch_size}, expected >= 1")

    @property
    def name(self) -> str:
        """``FGSM`` or ``PGD-<steps>``."""
        return "FGSM" if self.method == "fgsm" else f"PGD-{self.steps}"

    def describe(self) -> str:
        if self.method == "fgsm":
            return "FGSM"
        start = "random start" if self.random_start else "no random start"
        return (f"PGD-{self.steps} ({start}, {self.restarts} restart"
                f"{'s' if self.restarts != 1 else ''}, step {self.relative_step:.3g} x epsilon)")

    @property
    def relative_step(self) -> float:
        return self.step_size if self.step_size is not None else 2.5 / self.steps


@dataclass(frozen=True)
class RobustPoint:
    """Accuracy under one attack at one epsilon.

    Attributes:
        epsilon: The L-infinity budget on the [0, 1] scale.
        method: ``"fgsm"`` or ``"pgd"``.
        accuracy: Fraction of images still classified correctly.
        images: Images attacked.
        zero_gradient_images: Images whose loss gradient was zero everywhere at the clean image.
        mean_loss: Mean cross-entropy on the adversarial images.
    """

    epsilon: float
    method: str
    accuracy: float
    images: int
    zero_gradient_images: int
    mean_loss: float

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


def check_epsilons(epsilons: list[float] | tuple[float, ...]) -> list[float]:
    """The budgets, checked: each a number in [0, 1], at least one."""
    values = [float(e) for e in epsilons]
    if not values:
        raise ConfigError("epsilons: received none; give at least one, e.g. 0,0.01,0.03,0.1")
    bad = [e for e in values if not 0 <= e <= 1 or np.isnan(e)]
    if bad:
        raise ConfigError(f"epsilons: received {bad[0]:g}; each is on the [0, 1] pixel scale, "
                          "from 0 (no attack) to 1")
    return values


def _gradient(model: keras.Model, x: np.ndarray, labels: Any, loss: Any
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per-image ``loss(labels, logits)`` and the gradient of their sum with respect to ``x``."""
    return backend.input_gradient(model, loss)(x.astype("float32"), labels)


def _cross_entropy(labels: Any, logits: Any) -> Any:
    return keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)


def _margin(labels: Any, logits: Any) -> Any:
    """The best other class's logit minus the true class's (Carlini and Wagner's margin)."""
    true = ops.one_hot(labels, ops.shape(logits)[-1], dtype=logits.dtype)
    others = ops.max(logits - 1e9 * true, axis=-1)
    return others - ops.sum(logits * true, axis=-1)


def _losses_and_gradients(model: keras.Model, x: np.ndarray, y: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Per-image cross-entropy on the logits, and the gradient the attack steps along.

    A confident model can push the softmax to exactly 1 in float32: the cross-entropy and its
    gradient are then exactly 0, and a sign attack would not move the image. For those images the
    gradient is the logit margin's instead, which does not saturate; only images where that is
    zero too (a model whose output ignores them) keep a zero gradient.
    """
    losses, gradient = _gradient(model, x, y.astype("int32"), _cross_entropy)
    flat = np.zeros(len(x), bool) if x.size == 0 else \
        ~np.any(gradient.reshape(len(x), -1) != 0, axis=1)
    if flat.any():
        _, margin = _gradient(model, x[flat], y[flat].astype("int32"), _margin)
        gradient[flat] = margin
    return losses, gradient


def _predict(model: keras.Model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logits = ops.convert_to_numpy(model(x.astype("float32"), training=False))
    return logits.argmax(axis=-1), logits


def _per_image_loss(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -log_probs[np.arange(len(y)), y]


def _batches(n: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def _fgsm_batch(model: keras.Model, x: np.ndarray, y: np.ndarray, radius: float,
                low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    _, gradient = _losses_and_gradients(model, x, y)
    adversarial = np.clip(x + radius * np.sign(gradient), low, high).astype("float32")
    zero = ~np.any(gradient.reshape(len(x), -1) != 0, axis=1)
    return adversarial, zero


def _pgd_batch(model: keras.Model, x: np.ndarray, y: np.ndarray, radius: float, low: float,
               high: float, settings: AttackSettings, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
    """The strongest of ``restarts`` PGD runs and the FGSM image, per image."""
    best, zero = _fgsm_batch(model, x, y, radius, low, high)
    predicted, logits = _predict(model, best)
    best_fooled, best_loss = predicted != y, _per_image_loss(logits, y)
    step = settings.relative_step * radius
    for _ in range(settings.restarts):
        start = rng.uniform(-radius, radius, x.shape) if settings.random_start else 0.0
        current = np.clip(x + start, low, high).astype("float32")
        for _ in range(settings.steps):
            _, gradient = _losses_and_gradients(model, current, y)
            current = current + step * np.sign(gradient)
            current = np.clip(np.clip(current, x - radius, x + radius), low, high).astype("float32")
        predicted, logits = _predict(model, current)
        fooled, loss = predicted != y, _per_image_loss(logits, y)
        # A try that fools the model beats one that does not; between equals, the higher loss wins.
        better = (fooled & ~best_fooled) | ((fooled == best_fooled) & (loss > best_loss))
        best[better], best_fooled[better], best_loss[better] = current[better], fooled[better], \
            loss[better]
    return best, zero


def adversarial_examples(model: keras.Model, x: np.ndarray, y: np.ndarray, epsilon: float,
                         settings: AttackSettings | None = None, *,
                         value_range: tuple[float, float] = PIXEL_RANGE
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Adversarial versions of ``x`` within ``epsilon`` (L-infinity, on the [0, 1] scale).

    Args:
        model: A classifier from pixels to logits.
        x: Images in ``value_range`` (float or uint8), shaped like the model's input.
        y: Integer labels.
        epsilon: The budget on the [0, 1] scale: each pixel moves by at most
            ``epsilon * (high - low)``.
        settings: The attack (PGD-20 with a random start by default).
        value_range: The model's input range; adversarial images are clipped to it.

    Returns:
        ``(adversarial, zero_gradient)``: the images, float32, and a boolean per image that is True
        where the loss gradient was zero everywhere at the clean image.

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(2)])
        >>> x = np.zeros((1, 2, 2, 1), "float32")
        >>> adversarial, zero = adversarial_examples(model, x, np.array([0]), 0.0)
        >>> bool((adversarial == x).all())
        True
    """
    settings = settings or AttackSettings()
    (epsilon,) = check_epsilons([epsilon])
    low, high = value_range
    x = np.asarray(x, "float32")
    y = np.asarray(y).astype("int64")
    if len(x) != len(y):
        raise ConfigError(f"attack: {len(x)} images but {len(y)} labels")
    expected = tuple(model.input_shape[1:])
    if x.shape[1:] != expected:
        raise ConfigError(f"the model takes images of shape {expected}; received {x.shape[1:]}. "
                          "Attack it with the dataset (and image size) it was trained on")
    radius = epsilon * (high - low)
    rng = np.random.default_rng(settings.seed)
    adversarial = np.empty_like(x)
    zero = np.zeros(len(x), bool)
    for part in _batches(len(x), settings.batch_size):
        if settings.method == "fgsm":
            adversarial[part], zero[part] = _fgsm_batch(model, x[part], y[part], radius, low, high)
        else:
            adversarial[part], zero[part] = _pgd_batch(model, x[part], y[part], radius, low, high,
                                                       settings, rng)
    return adversarial, zero


def robust_accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray,
                    epsilons: list[float] | tuple[float, ...],
                    settings: AttackSettings | None = None, *,
                    value_range: tuple[float, float] = PIXEL_RANGE) -> list[RobustPoint]:
    """Accuracy under attack at each epsilon (epsilon 0 is the clean accuracy).

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(2)])
        >>> points = robust_accuracy(model, np.zeros((4, 2, 2, 1)), np.zeros(4, int), [0, 0.5],
        ...                          AttackSettings("fgsm"))
        >>> [p.epsilon for p in points]
        [0.0, 0.5]
    """
    settings = settings or AttackSettings()
    points = []
    y = np.asarray(y).astype("int64")
    for epsilon in check_epsilons(list(epsilons)):
        if epsilon == 0:
            adversarial, zero = np.asarray(x, "float32"), np.zeros(len(x), bool)
        else:
            adversarial, zero = adversarial_examples(model, x, y, epsilon, settings,
                                                     value_range=value_range)
        predicted, logits = [], []
        for part in _batches(len(adversarial), settings.batch_size):
            p, l = _predict(model, adversarial[part])
            predicted.append(p)
            logits.append(l)
        predicted_all, logits_all = np.concatenate(predicted), np.concatenate(logits)
        points.append(RobustPoint(
            epsilon=epsilon, method=settings.method,
            accuracy=float(np.mean(predicted_all == y)), images=len(y),
            zero_gradient_images=int(zero.sum()),
            mean_loss=float(np.mean(_per_image_loss(logits_all, y)))))
    return points
