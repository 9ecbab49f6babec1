"""The seam on JAX: stateless, jitted steps that thread every piece of state; no TensorFlow needed.

Import :mod:`gantransfer.backend` instead; it picks this module when Keras runs on JAX.

Keras's JAX trainer compiles ``train_step(state, data)`` with ``jax.jit``: the model's variables
hold no values while an epoch runs, and everything a step reads or changes travels in ``state``,
``(trainable, non_trainable, optimizer, metrics)`` values in the order of the model's own lists.
Everything stateful that the steps here do (BatchNorm statistics, the noise ``SeedGenerator``,
metric updates) therefore runs inside a ``keras.StatelessScope`` that maps each variable to its
value in the state, and its new values are read back out of the scope. A DCGAN's two optimizers
reach the state through ``model.optimizer``, an ``OptimizerPair`` whose variables are both
optimizers', the discriminator's first.

Example:
    >>> import sys
    >>> from gantransfer import backend
    >>> backend.resolve("jax") is sys.modules[__name__]
    True
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import jax
import keras
import numpy as np
from keras import ops
from keras import utils as keras_utils

from gantransfer.backend import user_cache_dir
from gantransfer.backend.common import ArrayBatches


def gan_train_step(gan: Any, state: Any, data: Any) -> tuple[dict[str, Any], Any]:
    """Both networks' gradients from one forward pass, each applied by its own optimizer.

    One ``jax.vjp`` of the forward pass gives both losses; its pullback runs twice, once for the
    discriminator's loss (with respect to D and the rotation head) and once for the generator's
    (with respect to G): the same gradients as the TensorFlow step's two tapes, from the same
    noise and the same BatchNorm batch statistics. Each optimizer then updates its own network
    with ``stateless_apply``.

    Args:
        gan: A compiled ``DCGAN`` whose optimizers are built.
        state: ``(trainable, non_trainable, optimizer, metrics)`` values, as Keras's JAX trainer
            passes them.
        data: A batch of real images, or a tuple whose first element is one.

    Returns:
        ``(logs, state)``: the metrics by name, and the new state in the same layout.
    """
    trainable, non_trainable, optimizer_values, metrics_values = state
    real = gan.real_batch(data)
    d_variables = gan.d_trainable_weights
    g_variables = gan.generator.trainable_weights
    position = {id(v): i for i, v in enumerate(gan.trainable_variables)}
    d_values = [trainable[position[id(v)]] for v in d_variables]
    g_values = [trainable[position[id(v)]] for v in g_variables]
    held = list(zip(gan.non_trainable_variables, non_trainable))

    def forward(d_values: list[Any], g_values: list[Any]) -> tuple[Any, Any]:
        mapping = [*zip(d_variables, d_values), *zip(g_variables, g_values), *held]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            d_loss, g_loss, measures = gan.step_losses(
                data, gan.sample_noise(ops.shape(real)[0]))
        updated = [scope.get_current_value(v) for v, _ in held]
        return (d_loss, g_loss), (measures, updated)

    (d_loss, g_loss), pullback, aux = jax.vjp(forward, d_values, g_values, has_aux=True)
    measures, non_trainable = aux
    split = len(gan.d_optimizer.variables)
    # Under float16 each optimizer scales its loss up (its LossScaleOptimizer unscales the
    # gradients); otherwise the scale is 1.
    d_scale = _loss_scale(gan.d_optimizer, optimizer_values[:split], d_loss)
    g_scale = _loss_scale(gan.g_optimizer, optimizer_values[split:], g_loss)
    zero = ops.zeros_like(d_loss)
    d_grads, _ = pullback((d_scale, zero))
    _, g_grads = pullback((zero, g_scale))
    d_values, d_optimizer = gan.d_optimizer.stateless_apply(optimizer_values[:split], d_grads,
                                                            d_values)
    g_values, g_optimizer = gan.g_optimizer.stateless_apply(optimizer_values[split:], g_grads,
                                                            g_values)
    trainable = list(trainable)
    for variables, values in ((d_variables, d_values), (g_variables, g_values)):
        for variable, value in zip(variables, values):
            trainable[position[id(variable)]] = value
    with keras.StatelessScope(state_mapping=list(zip(gan.metrics_variables,
                                                     metrics_values))) as scope:
        logs = gan.update_metrics(d_loss, g_loss, measures)
    metrics_values = [scope.get_current_value(v) for v in gan.metrics_variables]
    return logs, (trainable, non_trainable, [*d_optimizer, *g_optimizer], metrics_values)


def _loss_scale(optimizer: Any, values: list[Any], loss: Any) -> Any:
    """``optimizer.scale_loss`` of 1, with the optimizer's variables at ``values``."""
    with keras.StatelessScope(state_mapping=list(zip(optimizer.variables, values))):
        return optimizer.scale_loss(ops.ones_like(loss))


def adversarial_train_step(model: Any, state: Any, data: Any) -> tuple[dict[str, Any], Any]:
    """Keras's own JAX train step, on the batch with its adversarial images (see the package).

    The adversarial images are made inside a ``StatelessScope`` over the state's values, so they
    attack the weights of this step, and the random start's ``SeedGenerator`` advances in the
    state that goes on to the trainer's step.
    """
    from keras.src.backend.jax.trainer import JAXTrainer

    trainable, non_trainable, optimizer_values, metrics_values = state
    x, y, sample_weight = keras_utils.unpack_x_y_sample_weight(data)
    held = [*zip(model.trainable_variables, trainable),
            *zip(model.non_trainable_variables, non_trainable)]
    with keras.StatelessScope(state_mapping=held) as scope:
        adversarial = model.adversarial_batch(x, y)
    non_trainable = [scope.get_current_value(v) for v in model.non_trainable_variables]
    return JAXTrainer.train_step(model, (trainable, non_trainable, optimizer_values,
                                         metrics_values), (adversarial, y, sample_weight))


def value_and_gradient(function: Callable[[Any], Any], inputs: Any, *,
                       has_aux: bool = False) -> tuple[Any, Any]:
    """``function(inputs)`` and its gradient with respect to ``inputs``, by ``jax.value_and_grad``.

    Example:
        >>> value, gradient = value_and_gradient(lambda x: ops.sum(3.0 * x), np.ones(2, "float32"))
        >>> float(value), np.asarray(gradient).tolist()
        (6.0, [3.0, 3.0])
    """
    return jax.value_and_grad(function, has_aux=has_aux)(jax.numpy.asarray(inputs))


def input_gradient(model: Any, loss: Callable[[Any, Any], Any]
                   ) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A jitted ``(images, labels) -> (per-image losses, gradient)`` for the model (see the package).

    The model runs through ``stateless_call`` on its variables' current values, passed in at each
    call, so the compiled function never holds stale weights.

    Example: the weights of each call, not those it was compiled with
        >>> dense = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")
        >>> inputs = keras.Input((2,))
        >>> gradient = input_gradient(keras.Model(inputs, dense(inputs)),
        ...                           lambda labels, logits: logits[:, 0])
        >>> gradient(np.ones((1, 2), "float32"), np.zeros(1))[1].tolist()
        [[1.0, 1.0]]
        >>> _ = dense.kernel.assign(np.full((2, 1), 3.0, "float32"))
        >>> gradient(np.ones((1, 2), "float32"), np.zeros(1))[1].tolist()
        [[3.0, 3.0]]
    """
    def total(inputs: Any, labels: Any, trainable: Any, non_trainable: Any) -> tuple[Any, Any]:
        logits, _ = model.stateless_call(trainable, non_trainable, inputs, training=False)
        values = loss(labels, logits)
        return jax.numpy.sum(values), values  # a sum: each image's gradient is its own loss's

    step = jax.jit(jax.value_and_grad(total, has_aux=True))

    def gradient(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        (_, values), grad = step(x, labels, [v.value for v in model.trainable_variables],
                                 [v.value for v in model.non_trainable_variables])
        return np.array(values), np.array(grad)  # writable copies

    return gradient


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool = False,
                 seed: int = 0) -> Any:
    """:class:`~gantransfer.backend.common.ArrayBatches`: Keras's JAX trainer iterates a
    ``PyDataset`` without TensorFlow.

    Example:
        >>> [len(b) for b, _ in make_dataset(np.zeros((5, 3)), np.arange(5), 2)]
        [2, 2, 1]
    """
    return ArrayBatches(x, y, batch_size, shuffle=shuffle, seed=seed)


_DETERMINISTIC_FLAG = "--xla_gpu_deterministic_ops=true"


def enable_determinism() -> None:
    """Asks XLA for deterministic GPU kernels (JAX on a CPU is deterministic already).

    XLA reads the flag when it starts, and ``backend.import_quietly`` starts it (to find the
    devices) before a run's seed is set: within the process that asks for determinism, the flag
    reaches only subprocesses. For deterministic GPU kernels, set
    ``XLA_FLAGS=--xla_gpu_deterministic_ops=true`` before Python starts.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if _DETERMINISTIC_FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {_DETERMINISTIC_FLAG}".strip()


def disable_determinism() -> None:
    """Takes the deterministic-kernels flag out of ``XLA_FLAGS`` again (for later subprocesses)."""
    flags = os.environ.get("XLA_FLAGS", "").split()
    os.environ["XLA_FLAGS"] = " ".join(f for f in flags if f != _DETERMINISTIC_FLAG)


def determinism_enabled() -> bool:
    """Whether ``XLA_FLAGS`` asks for deterministic GPU kernels."""
    return _DETERMINISTIC_FLAG in os.environ.get("XLA_FLAGS", "").split()


def accelerators() -> list[str]:
    """The GPUs (or TPUs) JAX sees, e.g. ``['cuda:0']``.

    Example:
        >>> isinstance(accelerators(), list)
        True
    """
    return [f"{d.platform}:{d.id}" for d in jax.devices() if d.platform != "cpu"]


def device_kinds() -> list[str]:
    """Each accelerator's kind as JAX reports it, e.g. ``'NVIDIA H200'`` (see the package).

    Example:
        >>> len(device_kinds()) == len(accelerators())
        True
    """
    return [d.device_kind for d in jax.devices() if d.platform != "cpu"]


def batchnorm_options() -> dict[str, Any]:
    """None needed: a ``DataParallel`` step computes on the global batch (see the package)."""
    return {}


def peak_memory() -> int | None:
    """The first accelerator's ``peak_bytes_in_use`` (see the package)."""
    devices = [d for d in jax.devices() if d.platform != "cpu"]
    stats = devices[0].memory_stats() if devices else None
    return None if not stats else int(stats.get("peak_bytes_in_use", 0))


def float32_math() -> str:
    """TF32 on a CUDA GPU of compute capability 8.0 or more, unless float32 products are asked to
    run at full precision (see the package)."""
    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    precision = str(jax.config.jax_default_matmul_precision or "default").lower()
    if (not gpus or os.environ.get("NVIDIA_TF32_OVERRIDE") == "0"
            or precision in ("highest", "float32", "f32_f32_f32")):
        return "fp32"
    capability = str(getattr(gpus[0], "compute_capability", "0"))
    return "tf32" if int(capability.split(".")[0] or 0) >= 8 else "fp32"


def thread_setting() -> str | None:
    """None: XLA's CPU threads are not capped through the environment (see the package)."""
    return None


def one_thread_environment() -> dict[str, str]:
    """XLA's CPU client on one thread, read when JAX starts (see the package): the user's other
    ``XLA_FLAGS`` are kept."""
    flags = os.environ.get("XLA_FLAGS", "")
    one = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    return {"XLA_FLAGS": f"{flags} {one}".strip()}


def auto_jit_compile(distributed: bool) -> bool:
    """Always: Keras's JAX trainer compiles its steps with ``jax.jit`` wherever it runs."""
    return True


@contextlib.contextmanager
def distribution_scope(mode: str) -> Iterator[None]:
    """``keras.distribution.DataParallel`` over every local device for ``mirrored`` (see the
    package): the batch is split across the device mesh, the weights replicated, and XLA sums the
    gradients. Several CPU devices need ``XLA_FLAGS=--xla_force_host_platform_device_count=N``
    before JAX starts.

    Example:
        >>> with distribution_scope("mirrored"):
        ...     replicas() == len(jax.devices())
        True
    """
    if mode == "none":
        yield
        return
    with keras.distribution.DataParallel(devices=jax.devices()).scope():
        yield


def replicas() -> int:
    """The devices the current ``keras.distribution`` splits a batch across (see the package)."""
    distribution = keras.distribution.distribution()
    return 1 if distribution is None else int(distribution.device_mesh.devices.size)


def all_ready(ready: bool) -> bool:
    """``ready``: a run on JAX is one process (see the package)."""
    return ready


def cluster_errors() -> tuple[type[BaseException], ...]:
    """None: a run on JAX is one process (see the package)."""
    return ()


def compilation_cache_dir() -> Path:
    """Where the command line keeps XLA's compiled steps: ``$XDG_CACHE_HOME/gantransfer/jax``.

    Example:
        >>> compilation_cache_dir().parts[-2:]
        ('gantransfer', 'jax')
    """
    return user_cache_dir() / "jax"


def use_compilation_cache() -> None:
    """Keeps every compiled step on disk (JAX's persistent compilation cache), however quick its
    compile, unless the user set ``JAX_COMPILATION_CACHE_DIR`` (an empty value turns it off).

    A comparison trains many models of the same few shapes (one per seed, fold and strategy), and
    on JAX each new model's step is compiled again; with the cache, a step compiled once is read
    back. On 2 cores a 3-seed, 4-strategy digits comparison took 0.73x the time from an empty
    cache, 0.63x from a warm one (``benchmarks/bench_jax_cache.py``).
    It must run before the first compile.

    Example:
        >>> use_compilation_cache()  # doctest: +SKIP
    """
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return
    jax.config.update("jax_compilation_cache_dir", str(compilation_cache_dir()))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def start_up() -> None:
    """Finds the devices now (JAX logs its findings then), keeps compiled steps on disk
    (:func:`use_compilation_cache`), imports TensorFlow where it is installed, and turns down
    both's Python logging.

    Example:
        >>> start_up()
        >>> logging.getLogger("jax._src.xla_bridge").level == logging.ERROR
        True
    """
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.ERROR)
    use_compilation_cache()
    jax.devices()
    # Where TensorFlow is installed too, Keras imports it on JAX as well (keras.utils'
    # set_random_seed seeds it): import it now, while its C++ start-up lines go nowhere.
    if importlib.util.find_spec("tensorflow") is not None:
        importlib.import_module("tensorflow")
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
