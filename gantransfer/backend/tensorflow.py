"""The seam on TensorFlow: ``tf.GradientTape`` steps, ``tf.data`` pipelines, TF's switches.

Import :mod:`gantransfer.backend` instead; it picks this module when Keras runs on TensorFlow.

Example:
    >>> import sys
    >>> from gantransfer import backend
    >>> backend.resolve("tensorflow") is sys.modules[__name__]
    True
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Callable, Iterator

import numpy as np
import tensorflow as tf
from keras import ops
from keras import utils as keras_utils


def gan_train_step(gan: Any, data: Any) -> dict[str, Any]:
    """Both networks' gradients from one forward pass, applied together (see the package).

    Example:
        >>> from gantransfer.gan.train import build_dcgan
        >>> from gantransfer.config import load_config
        >>> gan = build_dcgan(load_config(None, ["gan.width=0.125", "gan.latent_dim=8"]), 28, 1)
        >>> float(gan_train_step(gan, np.zeros((4, 28, 28, 1), "float32"))["d_loss"]) > 0
        True
    """
    noise = _replica_noise(gan, ops.shape(gan.real_batch(data))[0])
    with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
        d_loss, g_loss, measures = gan.step_losses(data, noise)
        # Each replica's gradients are summed across replicas: scaled by the replica count, they
        # are the global batch's mean's. Under float16 each optimizer also scales its loss up.
        d_scaled = gan.d_optimizer.scale_loss(d_loss / replicas())
        g_scaled = gan.g_optimizer.scale_loss(g_loss / replicas())
    d_weights = gan.d_trainable_weights
    g_weights = gan.generator.trainable_weights
    gan.d_optimizer.apply_gradients(zip(d_tape.gradient(d_scaled, d_weights), d_weights))
    gan.g_optimizer.apply_gradients(zip(g_tape.gradient(g_scaled, g_weights), g_weights))
    logs = gan.update_metrics(d_loss, g_loss, measures)
    if _across_workers():
        # Keras averages a step's logs across workers along axis 0, which a scalar lacks
        # (tensorflow/tensorflow#72388): one value per replica, averaged into the scalar.
        logs = {key: tf.reshape(value, (1,)) for key, value in logs.items()}
    return logs


def _across_workers() -> bool:
    """Whether Keras reduces step logs across workers: the test its ``reduce_per_replica`` makes."""
    strategy = tf.distribute.get_strategy()
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and \
        strategy.extended._in_multi_worker_mode()


def _replica_noise(gan: Any, batch: Any) -> Any:
    """This replica's share of the global batch's noise: the same noise one device would draw.

    Every replica holds the same noise seed, so each drawing its own batch would give all of them
    the same noise; each draws the global batch's and keeps its own slice instead (the GAN's
    batches are full, so every replica's share is the same size).
    """
    context = tf.distribute.get_replica_context()  # None outside a replica's step
    count = context.num_replicas_in_sync if context is not None else 1
    if count == 1:
        return gan.sample_noise(batch)
    start = context.replica_id_in_sync_group * batch
    return gan.sample_noise(batch * count)[start:start + batch]


def adversarial_train_step(model: Any, data: Any) -> dict[str, Any]:
    """Keras's own TensorFlow train step, on the batch with its adversarial images (see the package).

    Example:
        >>> import keras
        >>> from gantransfer.robustness.training import AdversarialTraining, AdversariallyTrained
        >>> inputs = keras.Input((4, 4, 1))
        >>> model = AdversariallyTrained(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)),
        ...                              training=AdversarialTraining("fgsm", 0.1))
        >>> model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(True))
        >>> "loss" in adversarial_train_step(model, (np.ones((2, 4, 4, 1), "float32"), np.zeros(2)))
        True
    """
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    x, y, sample_weight = keras_utils.unpack_x_y_sample_weight(data)
    batch = (model.adversarial_batch(x, y), y, sample_weight)
    return TensorFlowTrainer.train_step(model, batch)


def value_and_gradient(function: Callable[[Any], Any], inputs: Any, *,
                       has_aux: bool = False) -> tuple[Any, Any]:
    """``function(inputs)`` and its gradient with respect to ``inputs``, by ``tf.GradientTape``.

    Example:
        >>> value, gradient = value_and_gradient(lambda x: ops.sum(3.0 * x), np.ones(2, "float32"))
        >>> float(value), gradient.numpy().tolist()
        (6.0, [3.0, 3.0])
    """
    inputs = tf.convert_to_tensor(inputs)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        result = function(inputs)
    value = result[0] if has_aux else result
    return result, tape.gradient(value, inputs)


def input_gradient(model: Any, loss: Callable[[Any, Any], Any]
                   ) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A ``tf.function`` ``(images, labels) -> (per-image losses, gradient)`` (see the package).

    Example: zeros, not None, where the loss ignores the pixels
        >>> import keras
        >>> inputs = keras.Input((2,))
        >>> model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
        >>> constant = lambda labels, logits: ops.zeros_like(logits[:, 0]) + 1.0
        >>> input_gradient(model, constant)(np.ones((1, 2), "float32"), np.zeros(1))[1].tolist()
        [[0.0, 0.0]]
    """
    @tf.function(reduce_retracing=True)
    def step(x: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            values = loss(labels, model(x, training=False))
            total = tf.reduce_sum(values)  # a sum: each image's gradient is its own loss's
        return values, tape.gradient(total, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)

    def gradient(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values, grad = step(tf.convert_to_tensor(x), tf.convert_to_tensor(labels))
        return values.numpy(), grad.numpy()

    return gradient


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool = False,
                 seed: int = 0) -> tf.data.Dataset:
    """An in-memory ``tf.data`` pipeline: cached, reshuffled every epoch from ``seed``, batched.

    For a head on cached features, where an epoch is a few cheap steps, it cuts the per-epoch
    overhead of ``fit`` on NumPy arrays by about two thirds.

    Example:
        >>> make_dataset(np.zeros((5, 3)), np.arange(5), 2).element_spec[0].shape.as_list()
        [None, 3]
    """
    data = tf.data.Dataset.from_tensor_slices((x, y)).cache()
    if shuffle:
        data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def enable_determinism() -> None:
    """Makes TensorFlow's kernels deterministic (and raises on ops that have no such kernel).

    Example:
        >>> enable_determinism()  # doctest: +SKIP
    """
    tf.config.experimental.enable_op_determinism()


def disable_determinism() -> None:
    """Turns TensorFlow's deterministic kernels off again (no public twin of
    ``enable_op_determinism``; Keras reads the same internal switch)."""
    from tensorflow.python.framework import config as tf_config

    tf_config.disable_op_determinism()


def determinism_enabled() -> bool:
    """Whether TensorFlow's deterministic kernels are on."""
    from tensorflow.python.framework import config as tf_config

    return bool(tf_config.is_op_determinism_enabled())


def accelerators() -> list[str]:
    """The GPUs TensorFlow sees, e.g. ``['/physical_device:GPU:0']``.

    Example:
        >>> isinstance(accelerators(), list)
        True
    """
    return [device.name for device in tf.config.list_physical_devices("GPU")]


def device_kinds() -> list[str]:
    """Each GPU's name as its driver gives it (see the package).

    Example:
        >>> len(device_kinds()) == len(accelerators())
        True
    """
    return [tf.config.experimental.get_device_details(device).get("device_name", device.name)
            for device in tf.config.list_physical_devices("GPU")]


def batchnorm_options() -> dict[str, Any]:
    """``synchronized=True`` under a strategy with several replicas (see the package)."""
    return {"synchronized": True} if replicas() > 1 else {}


def peak_memory() -> int | None:
    """TensorFlow's allocator's peak on the first GPU (see the package)."""
    if not accelerators():
        return None
    return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])


def float32_math() -> str:
    """TF32 on a GPU of compute capability 8.0 or more unless turned off (see the package)."""
    gpus = tf.config.list_physical_devices("GPU")
    if (not gpus or os.environ.get("NVIDIA_TF32_OVERRIDE") == "0"
            or not tf.config.experimental.tensor_float_32_execution_enabled()):
        return "fp32"
    major, _ = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
    return "tf32" if major >= 8 else "fp32"


def thread_setting() -> str | None:
    """``TF_NUM_INTRAOP_THREADS``, TensorFlow's own thread count, as set (see the package)."""
    return os.environ.get("TF_NUM_INTRAOP_THREADS")


def one_thread_environment() -> dict[str, str]:
    """One intra-op and one inter-op thread, read when TensorFlow starts (see the package)."""
    return {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}


def auto_jit_compile(distributed: bool) -> bool:
    """XLA on a GPU, not on a CPU nor under a strategy, as Keras's TensorFlow trainer decides."""
    return bool(accelerators()) and not distributed


@contextlib.contextmanager
def distribution_scope(mode: str) -> Iterator[None]:
    """``tf.distribute``'s strategy scope for ``mode`` (see the package).

    ``mirrored`` mirrors over every logical GPU, or with none every logical CPU device: two
    logical CPUs (``tf.config.set_logical_device_configuration``) make two replicas on one CPU.
    ``multi-worker`` joins the processes ``TF_CONFIG`` names, each with its local devices.

    Example:
        >>> with distribution_scope("mirrored"):
        ...     tf.distribute.get_strategy().__class__.__name__
        'MirroredStrategy'
    """
    if mode == "none":
        yield
        return
    if mode not in _STRATEGIES:  # one per process: TensorFlow's collectives are set up once
        if mode == "multi-worker":
            _STRATEGIES[mode] = tf.distribute.MultiWorkerMirroredStrategy()
        else:
            devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
            _STRATEGIES[mode] = tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
    with _STRATEGIES[mode].scope():
        yield


_STRATEGIES: dict[str, tf.distribute.Strategy] = {}


def replicas() -> int:
    """The current strategy's replica count (see the package)."""
    return int(tf.distribute.get_strategy().num_replicas_in_sync)


def all_ready(ready: bool) -> bool:
    """Whether every process of the current strategy is ``ready``, by an all-reduce (see the package).

    Example:
        >>> all_ready(True), all_ready(False)
        (True, False)
    """
    strategy = tf.distribute.get_strategy()

    # In a graph: an eager reduce that fails leaves a thread pool behind, noisy at exit.
    @tf.function(autograph=False)
    def missing(count: tf.Tensor) -> tf.Tensor:
        return strategy.reduce("SUM", strategy.experimental_distribute_values_from_function(
            lambda _: count), axis=None)

    try:
        return float(missing(tf.constant(0.0 if ready else 1.0))) == 0.0
    except tf.errors.OpError:  # a worker is gone: not every one is ready
        return False


def cluster_errors() -> tuple[type[BaseException], ...]:
    """What TensorFlow raises when a step's collectives fail: a worker is gone (see the package)."""
    return (tf.errors.OpError,)


def start_up() -> None:
    """Finds the devices now (TF logs its CUDA findings then) and turns down TF's Python logging.

    Example:
        >>> start_up()
        >>> logging.getLogger("tensorflow").level == logging.ERROR
        True
    """
    tf.config.list_physical_devices()
    # "N out of the last M calls triggered tf.function retracing": expected when many small models
    # are trained and evaluated one after another, as a comparison does.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
