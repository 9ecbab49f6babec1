"""The backend seam: the only place gantransfer touches a Keras backend's own API.

Everything else in gantransfer is backend-neutral (``keras.ops``, ``keras.random``,
``keras.layers``). What cannot be (autodiff, a data pipeline, determinism switches, device lists,
start-up noise) is written once per backend, in a sibling module with the same few functions, as
keras keeps its training loops in ``backend/<name>/trainer.py``. Callers import this package, never
a backend module; the module is picked from ``keras.config.backend()`` on first use.

Adding a backend is adding an entry to :data:`BACKENDS` and a module beside ``tensorflow.py``.

This package imports nothing heavy at import time: ``gantransfer`` imports it to choose the default
Keras backend before anything imports Keras.

Example:
    >>> from gantransfer import backend
    >>> backend.resolve("jax").__name__
    'gantransfer.backend.jax'
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable

from gantransfer.errors import GantransferError

if TYPE_CHECKING:
    import numpy as np

BACKENDS = {"tensorflow": "gantransfer.backend.tensorflow", "jax": "gantransfer.backend.jax"}
"""Keras backend name -> the module implementing the seam for it."""

DEFAULT_BACKEND = "tensorflow"


def user_cache_dir() -> Path:
    """The toolkit's own cache, outside any run folder: ``$XDG_CACHE_HOME/gantransfer``
    (``~/.cache/gantransfer``). What it holds can be made again, and it can be deleted at any time.

    It is defined here, at the bottom of the layers, because a backend keeps things in it too (JAX's
    compiled steps); :mod:`gantransfer.runs` re-exports it for the layers above.

    Example:
        >>> user_cache_dir().name
        'gantransfer'
    """
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gantransfer"


class UnsupportedBackendError(GantransferError, NotImplementedError):
    """Keras runs on a backend gantransfer has no seam module for.

    Example:
        >>> try:
        ...     resolve("torch")
        ... except UnsupportedBackendError as error:
        ...     print(str(error)[:59])
        gantransfer supports the jax and tensorflow backends; recei
    """


def select_default() -> None:
    """Makes TensorFlow Keras's backend unless the user chose one, and quiets TF's C++ logging.

    Keras reads ``KERAS_BACKEND`` once, when it is first imported, so this runs before anything
    imports Keras: ``import gantransfer`` calls it. A ``KERAS_BACKEND`` already set is kept. Where
    TensorFlow is not installed and JAX is (``pip install gantransfer[jax]``), JAX is the default.

    Example:
        >>> select_default()
        >>> os.environ["KERAS_BACKEND"] in BACKENDS
        True
    """
    if "KERAS_BACKEND" not in os.environ:
        installed = [name for name in BACKENDS if importlib.util.find_spec(name) is not None]
        os.environ["KERAS_BACKEND"] = DEFAULT_BACKEND if DEFAULT_BACKEND in installed or \
            not installed else installed[0]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def resolve(name: str | None = None) -> ModuleType:
    """The seam module for a Keras backend: ``keras.config.backend()``'s by default.

    Args:
        name: A Keras backend name; None asks Keras which one it runs on (importing Keras).

    Returns:
        The backend module, e.g. ``gantransfer.backend.tensorflow``.

    Raises:
        UnsupportedBackendError: If gantransfer has no module for the backend.
        BackendNotInstalledError: If Keras is not imported yet and ``KERAS_BACKEND`` names a
            backend that is not installed.

    Example:
        >>> import keras
        >>> resolve().__name__ == f"gantransfer.backend.{keras.config.backend()}"
        True
    """
    if name is None:
        if "keras" not in sys.modules:
            _require_installed(os.environ.get("KERAS_BACKEND", DEFAULT_BACKEND))
        import keras

        name = keras.config.backend()
    module = BACKENDS.get(name)
    if module is None:
        raise UnsupportedBackendError(
            f"gantransfer supports the {' and '.join(sorted(BACKENDS))} backends; received "
            f"KERAS_BACKEND={name!r}. Set KERAS_BACKEND=jax or tensorflow before Python starts "
            "(or before anything imports keras).")
    return importlib.import_module(module)


class BackendNotInstalledError(GantransferError, ImportError):
    """Keras is asked to run on a backend that is not installed (``import keras`` would fail)."""


def _require_installed(name: str) -> None:
    """Raises :class:`BackendNotInstalledError` if ``name`` is a backend we support but cannot import.

    Example:
        >>> _require_installed("tensorflow" if importlib.util.find_spec("tensorflow") else "jax")
    """
    if name in BACKENDS and importlib.util.find_spec(name) is None:
        others = [other for other in BACKENDS
                  if other != name and importlib.util.find_spec(other) is not None]
        switch = f", or set KERAS_BACKEND={others[0]}" if others else ""
        raise BackendNotInstalledError(
            f"KERAS_BACKEND={name}, but {name} is not installed: pip install "
            f"'gantransfer[{name}]'{switch}")


def gan_train_step(gan: Any, *args: Any) -> Any:
    """One simultaneous gradient step of both networks of a ``DCGAN``.

    ``DCGAN.train_step`` delegates here with what the backend's trainer gave it: ``(data)`` on
    TensorFlow, which returns the metrics by name, and ``(state, data)`` on JAX, which returns
    ``(metrics, state)``. The losses and metrics are the model's own (``step_losses``,
    ``update_metrics``); only the autodiff, and on JAX the state, are the backend's.

    Args:
        gan: A compiled ``gantransfer.gan.dcgan.DCGAN``.
        *args: The trainer's arguments; ``data`` is a batch of real images, or a tuple whose first
            element is one.

    Returns:
        What the backend's trainer expects of a ``train_step``.

    Example:
        >>> from gantransfer.gan.train import build_dcgan
        >>> from gantransfer.config import load_config
        >>> import numpy as np
        >>> gan = build_dcgan(load_config(None, ["gan.width=0.125", "gan.latent_dim=8"]), 28, 1)
        >>> sorted(gan.train_on_batch(np.zeros((4, 28, 28, 1), "float32"), return_dict=True))
        ['d_fake', 'd_loss', 'd_real', 'g_loss']
    """
    return resolve().gan_train_step(gan, *args)


def adversarial_train_step(model: Any, *args: Any) -> Any:
    """One training step of an ``AdversariallyTrained`` classifier, with the trainer's arguments
    (``(data)`` on TensorFlow, ``(state, data)`` on JAX, as for :func:`gan_train_step`).

    The adversarial batch is the model's own (``adversarial_batch``, in ``keras.ops`` around
    :func:`value_and_gradient`); the step that trains on it is the backend trainer's own
    ``train_step``, so losses, metrics, loss scaling and distribution behave as in any ``fit``.

    Args:
        model: A compiled ``gantransfer.robustness.training.AdversariallyTrained`` model.
        *args: The trainer's arguments; ``data`` is ``(x, y)`` or ``(x, y, sample_weight)``.

    Returns:
        What the backend's trainer expects of a ``train_step``.
    """
    return resolve().adversarial_train_step(model, *args)


def value_and_gradient(function: Callable[[Any], Any], inputs: Any, *,
                       has_aux: bool = False) -> tuple[Any, Any]:
    """A scalar function's value and its gradient with respect to its input tensor.

    The model's weights are constants here: only ``inputs`` is differentiated. This is the input
    gradient behind Grad-CAM (d class score / d activations) and gradient attacks (d loss / d
    pixels).

    Args:
        function: Maps a tensor shaped like ``inputs`` to a scalar, with ``keras.ops`` and Keras
            layers and models; with ``has_aux``, to ``(scalar, aux)``.
        inputs: An array or tensor.
        has_aux: ``function`` also returns something to pass through undifferentiated (tensors
            made inside it must leave this way: on JAX, any other way out leaks a tracer).

    Returns:
        ``(value, gradient)``, or ``((value, aux), gradient)`` with ``has_aux``: backend tensors,
        the gradient shaped like ``inputs``. TensorFlow gives None for the gradient when the value
        does not depend on ``inputs`` at all; JAX gives zeros.

    Example:
        >>> import numpy as np
        >>> from keras import ops
        >>> value, gradient = value_and_gradient(lambda x: ops.sum(x ** 2), np.array([1.0, -2.0]))
        >>> float(value), ops.convert_to_numpy(gradient).tolist()
        (5.0, [2.0, -4.0])
        >>> (value, aux), _ = value_and_gradient(lambda x: (ops.sum(x), x * 3), np.ones(2),
        ...                                      has_aux=True)
        >>> ops.convert_to_numpy(aux).tolist()
        [3.0, 3.0]
    """
    return resolve().value_and_gradient(function, inputs, has_aux=has_aux)


def input_gradient(model: Any, loss: Callable[[Any, Any], Any]
                   ) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A compiled function of ``(images, labels)``: each image's ``loss(labels, logits)`` and the
    gradient of their sum with respect to the images, the model's weights held constant.

    This is the attacks' inner loop (FGSM is one call, PGD one per step), so it is compiled once
    per model and loss and kept while the model lives: ``jax.jit`` over ``stateless_call`` on JAX,
    ``tf.function`` on TensorFlow. The model runs in inference mode, on its weights at each call.

    Args:
        model: A Keras model mapping images to logits.
        loss: ``(labels, logits) -> one value per image``, in ``keras.ops``.

    Returns:
        ``gradient(x, labels) -> (losses, gradient)``, NumPy arrays; the gradient is shaped like
        ``x``, and zeros where the loss does not depend on the pixels at all.

    Example:
        >>> import keras
        >>> import numpy as np
        >>> from keras import ops
        >>> inputs = keras.Input((3,))
        >>> model = keras.Model(inputs, keras.layers.Dense(2, kernel_initializer="ones")(inputs))
        >>> def loss(labels, logits):
        ...     return ops.sum(logits, axis=-1) * ops.cast(labels, logits.dtype)
        >>> losses, gradient = input_gradient(model, loss)(np.ones((2, 3), "float32"),
        ...                                                np.array([1, 0]))
        >>> losses.tolist(), gradient.tolist()
        ([6.0, 0.0], [[2.0, 2.0, 2.0], [0.0, 0.0, 0.0]])
        >>> input_gradient(model, loss) is input_gradient(model, loss)
        True
    """
    compiled = getattr(model, "_gantransfer_input_gradients", None)
    if compiled is None:
        compiled = {}
        # Kept on the model itself (past Keras's attribute tracking), so it goes when the model does.
        object.__setattr__(model, "_gantransfer_input_gradients", compiled)
    if loss not in compiled:
        compiled[loss] = resolve().input_gradient(model, loss)
    return compiled[loss]


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool = False,
                 seed: int = 0) -> Any:
    """An in-memory dataset of ``(x, y)`` batches that ``fit`` takes, reshuffled every epoch.

    Args:
        x: Inputs, first axis the examples.
        y: Targets, one per example.
        batch_size: Examples per batch (the last batch may be smaller).
        shuffle: Reshuffle every epoch; the order of every epoch follows from ``seed``.
        seed: Seed of the shuffles.

    Returns:
        Something ``keras.Model.fit`` iterates over once per epoch.

    Example:
        >>> import numpy as np
        >>> batches = make_dataset(np.zeros((5, 2)), np.arange(5), batch_size=2)
        >>> [len(y) for _, y in batches]
        [2, 2, 1]
    """
    return resolve().make_dataset(x, y, batch_size, shuffle=shuffle, seed=seed)


# Whether set_determinism turned the backend's determinism on (not the caller, before any run).
_DETERMINISM_SET = [False]


def set_determinism(deterministic: bool) -> None:
    """Deterministic kernels for a run that asks for them: the same seed gives the same numbers,
    slower. A run that does not ask turns off what an earlier run of this process turned on, so
    one deterministic run in a session does not make every later run deterministic (on
    TensorFlow, that also turns XLA off). Determinism the caller turned on is left on.

    Example:
        >>> set_determinism(False)  # nothing was turned on: nothing changes
    """
    module = resolve()
    if deterministic and not _DETERMINISM_SET[0] and not module.determinism_enabled():
        module.enable_determinism()
        _DETERMINISM_SET[0] = True
    elif not deterministic and _DETERMINISM_SET[0]:
        module.disable_determinism()
        _DETERMINISM_SET[0] = False


def determinism_enabled() -> bool:
    """Whether the backend's deterministic kernels are on (by a run, or by the caller).

    Example:
        >>> isinstance(determinism_enabled(), bool)
        True
    """
    return bool(resolve().determinism_enabled())


def accelerators() -> list[str]:
    """The accelerators (GPUs) the backend sees, by name; empty on a CPU-only machine.

    Example:
        >>> isinstance(accelerators(), list)
        True
    """
    return resolve().accelerators()


def device_kinds() -> list[str]:
    """What each accelerator is, e.g. ``['NVIDIA H200']``; empty on a CPU-only machine.

    Example:
        >>> len(device_kinds()) == len(accelerators())
        True
    """
    return resolve().device_kinds()


def usable_cores() -> int:
    """The cores this process may use: those it may run on (``os.sched_getaffinity``), or fewer
    where its environment gives it a share of them (``OMP_NUM_THREADS``, or the backend's own
    thread setting, e.g. ``TF_NUM_INTRAOP_THREADS``), as a launcher that runs several processes
    side by side does (pytest-xdist workers here, job schedulers).

    Example:
        >>> 1 <= usable_cores() <= (os.cpu_count() or 1)
        True
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    limits = [_positive(resolve().thread_setting()), _positive(os.environ.get("OMP_NUM_THREADS"))]
    return max(1, min([cores or 1, *[limit for limit in limits if limit is not None]]))


def _positive(text: str | None) -> int | None:
    try:
        value = int(text) if text is not None else 0
    except ValueError:
        return None
    return value if value > 0 else None


def one_thread_environment() -> dict[str, str]:
    """The environment variables that make a new process of this backend compute on one thread:
    for worker processes that train models side by side, one core each.

    Example:
        >>> one_thread_environment()["OMP_NUM_THREADS"]
        '1'
    """
    return {"OMP_NUM_THREADS": "1", **resolve().one_thread_environment()}


def batchnorm_options() -> dict[str, Any]:
    """Keyword arguments for a new ``BatchNormalization`` layer, so that its batch statistics are the
    global batch's in every distribution: on TensorFlow under a strategy with several replicas,
    ``synchronized=True`` (an all-reduce per layer); elsewhere none (JAX's ``DataParallel`` computes
    on the global batch already). Files saved from such a layer drop the flag
    (``gantransfer.runtime.portable_model``): Keras refuses it on JAX.

    Example:
        >>> batchnorm_options()
        {}
    """
    return resolve().batchnorm_options()


def peak_memory() -> int | None:
    """The most bytes the first accelerator has held since the process started; None on a CPU.

    Example:
        >>> peak_memory() is None or peak_memory() >= 0
        True
    """
    return resolve().peak_memory()


def float32_math() -> str:
    """What float32 matrix products and convolutions compute in on the first accelerator:
    ``"tf32"`` where the backend lets them use TensorFloat-32 tensor cores (NVIDIA Ampere and
    later, where TensorFlow and JAX both do so by default: a 10-bit mantissa for the products,
    float32 for the sums), else ``"fp32"`` (a CPU, an older GPU, or TF32 turned off with
    ``NVIDIA_TF32_OVERRIDE=0``, or ``JAX_DEFAULT_MATMUL_PRECISION=highest`` on JAX).

    Example:
        >>> float32_math() in ("tf32", "fp32")
        True
    """
    return resolve().float32_math()


def auto_jit_compile(distributed: bool) -> bool:
    """What Keras's ``jit_compile="auto"`` becomes here: on TensorFlow, XLA on a GPU and not under a
    ``tf.distribute`` strategy nor on a CPU; on JAX, always (its steps are ``jax.jit`` functions).

    Example:
        >>> isinstance(auto_jit_compile(distributed=False), bool)
        True
    """
    return resolve().auto_jit_compile(distributed)


def distribution_scope(mode: str) -> Any:
    """A context in which models, optimizers and ``fit`` span the devices ``mode`` names.

    ``none``: one device, as Keras picks it. ``mirrored``: every local GPU (or, with none, every
    logical CPU device), one replica each; on TensorFlow ``tf.distribute.MirroredStrategy``, on JAX
    ``keras.distribution.DataParallel``. ``multi-worker`` (TensorFlow): every process ``TF_CONFIG``
    names, through ``tf.distribute.MultiWorkerMirroredStrategy``.

    Args:
        mode: One of ``gantransfer.runtime.DISTRIBUTIONS``.

    Returns:
        A context manager.

    Raises:
        ConfigError: If the backend cannot distribute that way.

    Example:
        >>> with distribution_scope("none"):
        ...     replicas()
        1
    """
    return resolve().distribution_scope(mode)


def replicas() -> int:
    """How many replicas a batch is split across in the current distribution scope (1 outside)."""
    return resolve().replicas()


def all_ready(ready: bool) -> bool:
    """Whether every process of the run is ``ready``: each passes its own answer, and all wait here
    until every one has, then get the same reply. A run spans one process except under
    ``multi-worker``, where a worker that refuses to start would otherwise leave the others waiting
    for it at their first training step.

    Example:
        >>> all_ready(True)
        True
    """
    return resolve().all_ready(ready)


def cluster_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a training step raises when a worker of a ``multi-worker`` run stopped or
    lost touch (the others' collectives fail); empty where a run is one process.

    Example:
        >>> all(issubclass(kind, BaseException) for kind in cluster_errors())
        True
    """
    return resolve().cluster_errors()


def import_quietly() -> None:
    """Imports Keras and its backend, and finds the devices, with stderr silenced meanwhile.

    Backends write C++ start-up lines (TensorFlow's oneDNN notes, "could not find cuda drivers")
    before any Python log level applies, so stderr is silenced at the file-descriptor level; users
    of the command line see only gantransfer's own output. Set ``GANTRANSFER_BACKEND_LOGS=1`` to
    see them; the start-up is otherwise the same. Once Keras is imported its backend is too, and
    this does nothing.

    Raises:
        UnsupportedBackendError: If Keras runs on a backend gantransfer does not support.

    Example:
        >>> import_quietly()
        >>> "keras" in sys.modules
        True
    """
    if "keras" in sys.modules:
        return
    if os.environ.get("GANTRANSFER_BACKEND_LOGS") == "1":
        resolve().start_up()
        return
    try:
        saved = os.dup(2)
    except OSError:  # No real stderr (e.g. an embedding host): nothing to silence.
        resolve().start_up()
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(devnull, 2)
        resolve().start_up()
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
