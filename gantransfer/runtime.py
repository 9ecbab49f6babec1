"""How a run uses the machine: the precision its layers compute in, XLA, the devices it spans, and
the worker processes that train small models side by side on a CPU (:class:`WorkerPool`).

A :class:`Runtime` is made from the ``train`` section of a config (``train.precision``,
``train.jit_compile``, ``train.distribute``) and is active for the whole of a run, GAN training and
transfer fits alike: ``with Runtime(...).activate():``. Inside it:

- new layers compute in the precision's dtype (Keras's global dtype policy), their variables stay
  float32, and the layers that make final logits or images are float32 in every policy;
- every ``compile`` in gantransfer passes :func:`current` ``.jit_compile`` to Keras;
- models and optimizers are created in the backend's distribution scope (see
  :func:`gantransfer.backend.distribution_scope`), so ``fit`` spans every replica; under
  ``multi-worker`` every process ``TF_CONFIG`` names runs the same run, and only the chief writes
  its files (:attr:`Runtime.cluster`).

Leaving it restores the dtype policy and the distribution that were there before, so one Python
process can run several configurations in turn.

Example:
    >>> import keras
    >>> with Runtime(precision="mixed_bfloat16").activate() as runtime:
    ...     keras.layers.Dense(2).dtype_policy.name, current() is runtime
    ('mixed_bfloat16', True)
    >>> keras.config.dtype_policy().name, current().precision
    ('float32', 'float32')
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Callable, Iterator, TypeVar

from gantransfer import backend
from gantransfer.config import DISTRIBUTIONS, PRECISIONS  # noqa: F401  (the values, documented there)
from gantransfer.errors import ClusterError, ConfigError, GantransferError

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Runtime:
    """A run's precision, XLA setting and distribution.

    Attributes:
        precision: One of :data:`PRECISIONS`.
        jit_compile: True or False for XLA-compiled train steps, or ``"auto"``: Keras's rule (XLA on
            a GPU, not on a CPU, where it was measured slower for a DCGAN step; on JAX, steps are
            always XLA-compiled).
        distribute: One of :data:`DISTRIBUTIONS`.
    """

    precision: str = "float32"
    jit_compile: bool | str = "auto"
    distribute: str = "none"

    @classmethod
    def from_config(cls, config: Any) -> "Runtime":
        """The runtime a config's ``train`` section asks for.

        Example:
            >>> from gantransfer.config import load_config
            >>> Runtime.from_config(load_config(None, ["train.precision=mixed_float16"])).precision
            'mixed_float16'
        """
        t = config.train
        return cls(precision=t.precision, jit_compile=t.jit_compile, distribute=t.distribute)

    @contextlib.contextmanager
    def activate(self) -> Iterator["Runtime"]:
        """Sets the dtype policy and enters the distribution scope; restores both on the way out.

        Raises:
            ConfigError: ``multi-worker`` off TensorFlow, or without a usable ``TF_CONFIG``.
        """
        global _ACTIVE
        if _ACTIVE == self:  # e.g. compare's GAN training inside compare's own runtime
            yield self
            return
        self.cluster  # noqa: B018  (checks TF_CONFIG before TensorFlow reads it)
        if self.precision == "mixed_float16" and not backend.accelerators() and not _WARNED:
            _WARNED.append(self.precision)
            logger.warning("train.precision=mixed_float16 on a CPU: CPUs compute float16 slowly "
                           "and it is meant for GPUs (mixed_bfloat16 or float32 suit a CPU)")
        previous_runtime = _ACTIVE
        _ACTIVE = self
        try:
            with _dtype_policy(self.precision), backend.distribution_scope(self.distribute):
                yield self
        finally:
            _ACTIVE = previous_runtime

    def describe(self) -> dict[str, Any]:
        """What ``run.json`` and the report record of it: the settings and the replicas used.

        Example:
            >>> Runtime().describe()["precision"], Runtime().describe()["replicas"]
            ('float32', 1)
        """
        return {"precision": self.precision, "jit_compile": self.jit_compile, "xla": self.xla,
                "distribute": self.distribute, "replicas": backend.replicas(),
                "workers": self.cluster.workers}

    @property
    def cluster(self) -> "Cluster":
        """The machines the run spans: this one alone, or under ``multi-worker`` those ``TF_CONFIG``
        names (see :func:`cluster_from_tf_config`).

        Raises:
            ConfigError: ``multi-worker`` off TensorFlow, or without a usable ``TF_CONFIG``.
        """
        if self.distribute != "multi-worker":
            return Cluster()
        import keras

        if keras.config.backend() != "tensorflow":
            raise ConfigError(f"train.distribute=multi-worker is TensorFlow's "
                              f"MultiWorkerMirroredStrategy and Keras runs on "
                              f"{keras.config.backend()}; set KERAS_BACKEND=tensorflow, or use "
                              "train.distribute=mirrored for this machine's devices")
        return cluster_from_tf_config(os.environ.get("TF_CONFIG"))

    @property
    def xla(self) -> bool:
        """Whether the training steps are XLA-compiled: ``jit_compile``, with ``auto`` resolved as
        Keras resolves it (:func:`gantransfer.backend.auto_jit_compile`)."""
        if isinstance(self.jit_compile, bool):
            return self.jit_compile
        return backend.auto_jit_compile(distributed=self.distribute != "none")


_ACTIVE: Runtime | None = None
_WARNED: list[str] = []  # float16 on a CPU is said once per process


def start_together(run: Runtime, check: Callable[[], T]) -> T:
    """Runs ``check``, which raises a :class:`GantransferError` to refuse to start a run, and
    returns what it returns; under ``multi-worker``, every worker then learns whether all of them
    passed (:func:`gantransfer.backend.all_ready`), and none is left waiting for one that stopped.

    Example:
        >>> start_together(Runtime(), lambda: "ready")
        'ready'

    Raises:
        GantransferError: ``check``'s, on the worker it failed on.
        ClusterError: On the other workers, when ``check`` failed on another.
    """
    if run.cluster.workers == 1:
        return check()
    with run.activate():  # TensorFlow joins the cluster before anything else computes
        pass
    try:
        result = check()  # outside the cluster's scope: it may fit a model of its own
    except GantransferError:
        with run.activate():
            backend.all_ready(False)
        raise
    with run.activate():
        if not backend.all_ready(True):
            raise ClusterError(f"another worker of the cluster refused to start "
                               f"({run.cluster.task} was ready); that worker's output says why")
    return result


@contextlib.contextmanager
def together(run: Runtime) -> Iterator[None]:
    """Under ``multi-worker``, the workers leave the block together, and a worker gone mid-way
    becomes a :class:`ClusterError` on the others, in one line.

    A worker that finished its share waits here for the rest (the chief, say, writing the run's
    files), so that none is left to find its peers gone. A worker that stopped (an error, a lost
    machine) makes the others' collectives fail; they stop too, and say so.

    Example:
        >>> with together(Runtime()):
        ...     pass

    Raises:
        ClusterError: Another worker stopped, or did not finish.
    """
    if run.cluster.workers == 1:
        yield
        return
    task = run.cluster.task
    finished, lost = False, None
    try:
        yield
        finished = True
    except backend.cluster_errors() as error:
        # Raised below, once the backend's error (and the frames its traceback holds) is let go.
        lost = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    finally:
        with run.activate():
            everyone = backend.all_ready(finished)
    if lost is not None:
        raise ClusterError(f"{task} stopped: another worker stopped or lost touch ({lost[:200]}). "
                           "Its output says why; the chief's checkpoints are kept, so start every "
                           "worker again with --resume")
    if not everyone:
        raise ClusterError(f"another worker stopped before the end ({task} finished); its output "
                           "says why, and the chief's checkpoints are kept: start every worker "
                           "again with --resume")


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The machines of a run, and this process's place among them.

    Attributes:
        workers: How many processes train together (each with its local devices).
        task: This process's task in ``TF_CONFIG`` terms, e.g. ``"worker 1"``.
        chief: Whether this process writes the run's files. The others train alongside it and write
            nothing of the run (``tf.distribute``'s rule: the ``chief`` task, or worker 0 when the
            cluster names none).
    """

    workers: int = 1
    task: str = "worker 0"
    chief: bool = True


_TF_CONFIG_EXAMPLE = ('TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                      '"task": {"type": "worker", "index": 0}}\'')


def cluster_from_tf_config(text: str | None) -> Cluster:
    """The cluster a ``TF_CONFIG`` value describes, checked as TensorFlow will read it.

    Example:
        >>> spec = {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}
        >>> cluster_from_tf_config(json.dumps(spec))
        Cluster(workers=2, task='worker 1', chief=False)

    Raises:
        ConfigError: ``TF_CONFIG`` is unset, not JSON, or names no task of its cluster.
    """
    fix = f"set it on every machine, e.g. {_TF_CONFIG_EXAMPLE} (the index differs per machine)"
    if not text:
        raise ConfigError(f"train.distribute=multi-worker needs TF_CONFIG, the cluster's addresses: "
                          f"{fix}")
    try:
        spec = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"TF_CONFIG is not JSON ({error}); {fix}") from None
    jobs = spec.get("cluster") if isinstance(spec, dict) else None
    task = spec.get("task") if isinstance(spec, dict) else None
    if not isinstance(jobs, dict) or not isinstance(task, dict) or not all(
            isinstance(jobs.get(job, []), list) for job in ("chief", "worker")):
        raise ConfigError(f"TF_CONFIG needs a \"cluster\" of address lists and a \"task\"; {fix}")
    kind, index = task.get("type"), task.get("index")
    if kind not in ("chief", "worker") or isinstance(index, bool) or not isinstance(index, int) \
            or not 0 <= index < len(jobs.get(kind, [])):
        raise ConfigError(f"TF_CONFIG's task {task!r} is not a chief or worker of its cluster "
                          f"{jobs!r}; {fix}")
    chiefs = jobs.get("chief", [])
    return Cluster(workers=len(chiefs) + len(jobs.get("worker", [])), task=f"{kind} {index}",
                   chief=kind == "chief" or (not chiefs and index == 0))


@contextlib.contextmanager
def _dtype_policy(name: str) -> Iterator[None]:
    """Keras's global dtype policy set to ``name`` inside, and put back on the way out."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def float32_layers() -> contextlib.AbstractContextManager[None]:
    """New layers compute in float32 inside, whatever the run's precision; for the models that
    measure (FID's feature extractor), whose numbers must not depend on how a run trained.

    Example:
        >>> import keras
        >>> with Runtime(precision="mixed_float16").activate(), float32_layers():
        ...     keras.layers.Dense(2).dtype_policy.name
        'float32'
    """
    return _dtype_policy("float32")


def current() -> Runtime:
    """The active :class:`Runtime`: the innermost ``activate()``, or the defaults outside any.

    Example:
        >>> current().jit_compile
        'auto'
    """
    return _ACTIVE if _ACTIVE is not None else Runtime()


def _portable_config(value: Any) -> Any:
    """A serialized Keras object with every mixed dtype policy in it replaced by float32, and every
    BatchNormalization's ``synchronized`` flag dropped."""
    if isinstance(value, list):
        return [_portable_config(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "DTypePolicy" in str(value.get("class_name", "")) and \
            str((value.get("config") or {}).get("name", "")).startswith("mixed_"):
        return {**value, "config": {**value["config"], "name": "float32"}}
    return {key: _portable_config(item) for key, item in value.items() if key != "synchronized"}


def _portable(layer: Any) -> bool:
    return layer.dtype_policy.name == "float32" and not getattr(layer, "synchronized", False)


def portable_model(model: Any) -> Any:
    """``model`` itself if it saves as a file any machine loads; otherwise such a twin, with its
    weights: every layer float32, and no BatchNormalization synchronized across replicas.

    Files a run saves are float32 models in every precision, so they load and predict the same way
    on any machine (a float16 model is slow on a CPU, and bfloat16 has few digits). The weights of a
    mixed-precision model are float32 already: the twin holds the same values. A layer synchronized
    across ``tf.distribute`` replicas computes as any other on one device, and Keras refuses the flag
    on JAX, so the twin leaves it out.

    Example:
        >>> import keras, numpy as np
        >>> with Runtime(precision="mixed_float16").activate():
        ...     inputs = keras.Input((3,))
        ...     mixed = keras.Model(inputs, keras.layers.Dense(2)(inputs))
        >>> twin = portable_model(mixed)
        >>> [layer.dtype_policy.name for layer in twin.layers[1:]], twin.output.dtype
        (['float32'], 'float32')
        >>> all(np.array_equal(a, b) for a, b in zip(twin.get_weights(), mixed.get_weights()))
        True
        >>> portable_model(twin) is twin
        True
    """
    import keras

    if all(_portable(layer) for layer in _every_layer(model)):
        return model
    config = _portable_config(keras.saving.serialize_keras_object(model))
    with float32_layers():  # for any layer whose config names no policy
        twin = keras.saving.deserialize_keras_object(config)
    twin.set_weights(model.get_weights())
    return twin


def _every_layer(model: Any) -> Iterator[Any]:
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _every_layer(layer)


class WorkerPool:
    """Processes that each compute on one thread, for work that keeps one core busy and gains
    little from a second thread (small models on a CPU): several side by side finish sooner than
    one after the other.

    They are new Python processes (``spawn``): the backend is started afresh in each, on one thread
    (:func:`gantransfer.backend.one_thread_environment`), with its start-up lines silenced, and the
    caller's main module is not imported in them (they run gantransfer's code alone, so a script
    that calls the library without an ``if __name__ == "__main__":`` guard is not run again in
    each). Ctrl-C reaches the caller alone, which stops them: leaving the ``with`` block cancels
    what has not started and ends the processes at once, work in progress included.

    Args:
        workers: How many processes.
        initializer: Called once in each process with ``initargs``, after the backend has started:
            a module-level function, as everything sent to the processes must pickle (and not one
            of the caller's main module, which they do not import).
        initargs: Its arguments.

    Example:
        >>> with WorkerPool(1, len, ((),)) as pool:  # doctest: +SKIP
        ...     [future.result() for future in pool.submit_all(abs, [-1, 2])]
        [1, 2]
    """

    def __init__(self, workers: int, initializer: Callable[..., None], initargs: tuple) -> None:
        self.workers = workers
        self._payload = pickle.dumps((initializer, initargs))
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def submit_all(self, function: Callable[[Any], T], items: list[Any]) -> dict[Future, Any]:
        """Queues ``function(item)`` for every item, starting the processes; returns each item by
        its future (``concurrent.futures``)."""
        with _one_thread_children():  # the processes start as the first items are queued
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker, initargs=(self._payload,))
            return {self._pool.submit(function, item): item for item in items}

    def close(self) -> None:
        """Cancels what has not started and ends every process, now."""
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + 10
        for process in processes:
            # The pool's own thread may reap a process first, and a join then returns at once.
            while process.is_alive() and time.monotonic() < deadline:
                process.join(timeout=0.1)
            if process.is_alive():
                process.kill()


def _start_worker(payload: bytes) -> None:
    """A :class:`WorkerPool` process's start: Ctrl-C left to the caller, the backend started
    quietly, then the caller's initializer, unpickled only now (what it carries may import Keras)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    backend.import_quietly()
    initializer, initargs = pickle.loads(payload)
    initializer(*initargs)


@contextlib.contextmanager
def _one_thread_children() -> Iterator[None]:
    """While worker processes start: the environment that starts their backend on one thread, and
    no main module for them to import."""
    settings = backend.one_thread_environment()
    saved_env = {name: os.environ.get(name) for name in settings}
    main = sys.modules["__main__"]
    saved_main = {name: main.__dict__[name] for name in ("__file__", "__spec__")
                  if name in main.__dict__}
    os.environ.update(settings)
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved_main)
