"""Shared test set-up: the backend, quiet logs, and tiny configs.

The suite runs on the backend gantransfer picks (``KERAS_BACKEND`` if set, else TensorFlow where
it is installed, else JAX): ``KERAS_BACKEND=jax pytest`` runs it on JAX.
"""

import os
import tempfile

os.environ.setdefault("MPLBACKEND", "Agg")
# On JAX, every test's models are compiled; many share shapes, so compiled steps are kept on disk
# for the whole run (and its subprocesses), away from the user's own cache.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), "gantransfer-tests-jax-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


def _share_the_cores() -> None:
    """Gives each pytest-xdist worker its share of the cores, before any backend starts.

    TensorFlow, OpenMP and BLAS each start a thread per core in every process, so two workers on
    two cores would keep twice as many threads busy as there are cores, each pair contending for
    one (the README's "Running the tests" says more). XLA's own CPU threads are left alone:
    turning them off too (``--xla_cpu_multi_thread_eigen=false``) made the JAX suite slower. Set in
    the environment, the share reaches the processes tests start too; a setting already made (the
    user's own) is kept.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers < 2:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    share = str(max(1, (cores or 1) // workers))
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(name, share)


_share_the_cores()

from gantransfer.backend import select_default  # noqa: E402  (imports neither Keras nor a backend)

select_default()

import pytest  # noqa: E402

TINY = ["gan.width=0.125", "gan.latent_dim=8", "gan.kernel_size=3", "train.verbose=0",
        "train.sample_images=4", "train.batch_size=16"]


@pytest.fixture(scope="session", autouse=True)
def _a_user_cache_for_this_run(tmp_path_factory):
    """The toolkit's user cache (``$XDG_CACHE_HOME/gantransfer``: trained feature classifiers; JAX's
    compiled steps have their own folder, above) in this run's temporary folder, shared by its
    pytest-xdist workers and the processes tests start, and away from the user's own: a classifier
    that several tests train on the same images is trained once per run, and a later run starts
    empty."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    os.environ["XDG_CACHE_HOME"] = str(shared / "user-cache")


@pytest.fixture
def tiny_overrides() -> list[str]:
    """Overrides that make a DCGAN small enough to train in a second on a CPU."""
    return list(TINY)


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras cache in tmp_path, and downloads that fail as they do offline (recorded)."""
    import urllib.error
    from types import SimpleNamespace

    from keras.src.backend import config as keras_config
    from keras.src.utils import file_utils

    home = tmp_path / "keras_home"
    (home / "models").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(home))
    # Keras reads KERAS_HOME once, at import; get_file asks keras_home() for it at every call.
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(home))
    attempts: list[tuple[str, str]] = []

    def offline(url, filename, *args, **kwargs):
        attempts.append((url, filename))
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "urlretrieve", offline)
    return SimpleNamespace(models=home / "models", attempts=attempts)


# The modules that take longest, longest first (``pytest --durations``). Two workers take whole
# modules in collection order (``--dist loadfile``), so these start first and the rest fill in
# around them; alphabetical order would start the longest last and leave one worker idle at the
# end. Since pytest-xdist 3.5 it orders modules by their number of tests, most first, which starts
# these (a test or a few each) last: ``--no-loadscope-reorder`` (pyproject.toml) keeps this order.
LONGEST_FIRST = ["test_readme_commands.py", "test_readme_benchmark_scripts.py",
                 "test_readme_benchmarks.py", "test_multi_worker.py", "test_readme.py",
                 "test_backends_agree.py", "test_config_keys.py", "test_robustness_in_transfer.py",
                 "test_checkpoint.py", "test_experiment.py", "test_cli.py", "test_gan_train.py",
                 "test_strategies.py", "test_gan_metrics.py"]


def pytest_collection_modifyitems(config, items):
    """Starts the longest modules first, and skips the tests marked ``tensorflow_only`` on other
    backends, with the reason each gives."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within kept
    name = os.environ["KERAS_BACKEND"]
    for item in items:
        marker = item.get_closest_marker("tensorflow_only")
        if marker is not None and name != "tensorflow":
            item.add_marker(pytest.mark.skip(reason=f"TensorFlow only: {marker.args[0]}"))
