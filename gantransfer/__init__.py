"""gantransfer: train a DCGAN on unlabeled images, transfer its discriminator to few-label classifiers.

The public API is importable from the top level; heavy modules (Keras, TensorFlow) load on first
use, so ``gantransfer --help`` stays instant.

Example:
    >>> import gantransfer as gt
    >>> config = gt.load_config(None, ["train.epochs=1", "gan.width=0.125"])
    >>> result = gt.train_gan(config, "outputs/my-first-gan")  # doctest: +SKIP
"""

import importlib
from importlib import metadata as _metadata
from typing import Any

from gantransfer.backend import select_default as _select_default

# Keras reads the backend once, at import: choose it before anything imports Keras.
_select_default()

try:
    __version__ = _metadata.version("gantransfer")
except _metadata.PackageNotFoundError:  # Running from a source tree that is not installed.
    __version__ = "0.0.0+source"

_EXPORTS = {
    "Config": "gantransfer.config",
    "load_config": "gantransfer.config",
    "ClusterError": "gantransfer.errors",
    "ConfigError": "gantransfer.errors",
    "DataError": "gantransfer.errors",
    "GantransferError": "gantransfer.errors",
    "RunFolderError": "gantransfer.errors",
    "TrainingDiverged": "gantransfer.errors",
    "Dataset": "gantransfer.data",
    "ImageSet": "gantransfer.data",
    "ImageBatches": "gantransfer.data",
    "load_dataset": "gantransfer.data",
    "DCGAN": "gantransfer.gan",
    "build_discriminator": "gantransfer.gan",
    "build_generator": "gantransfer.gan",
    "build_dcgan": "gantransfer.gan",
    "train_gan": "gantransfer.gan",
    "TrainGanResult": "gantransfer.gan",
    "conv_output_size": "gantransfer.shapes",
    "filter_grid": "gantransfer.visualize",
    "feature_maps": "gantransfer.visualize",
    "grad_cam": "gantransfer.visualize",
    "grad_cam_overlay": "gantransfer.visualize",
    "embed": "gantransfer.visualize",
    "embedding_figure": "gantransfer.visualize",
    "evaluate_gan": "gantransfer.workflows.scoring",
    "frechet_distance": "gantransfer.evaluation.gan_metrics",
    "kernel_inception_distance": "gantransfer.evaluation.gan_metrics",
    "sample": "gantransfer.gan.sampling",
    "interpolate": "gantransfer.gan.sampling",
    "load_generator": "gantransfer.gan.sampling",
    "transfer": "gantransfer.workflows.experiment",
    "compare": "gantransfer.workflows.experiment",
    "TransferResult": "gantransfer.workflows.experiment",
    "build_classifier": "gantransfer.transfer_learning.classifiers",
    "build_head": "gantransfer.transfer_learning.classifiers",
    "load_classifier": "gantransfer.transfer_learning.classifiers",
    "build_gan_trunk": "gantransfer.transfer_learning.trunks",
    "import_discriminator_weights": "gantransfer.transfer_learning.trunks",
    "trunk_from_discriminator": "gantransfer.transfer_learning.trunks",
    "reestimate_batchnorm": "gantransfer.transfer_learning.trunks",
    "build_backbone": "gantransfer.transfer_learning.backbones",
    "BACKBONES": "gantransfer.transfer_learning.backbones",
    "STRATEGIES": "gantransfer.registry",
    "StrategyResult": "gantransfer.evaluation.results",
    "write_report": "gantransfer.reporting.report",
    "AttackSettings": "gantransfer.robustness",
    "adversarial_examples": "gantransfer.robustness",
    "robust_accuracy": "gantransfer.robustness",
    "attack_model": "gantransfer.workflows.attacking",
}

__all__ = sorted([*_EXPORTS, "__version__"])

# The modules of the API that import no Keras: reading them leaves the backend unloaded.
_WITHOUT_KERAS = {"gantransfer.config", "gantransfer.errors", "gantransfer.shapes",
                  "gantransfer.registry"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gantransfer' has no attribute {name!r}")
    if module not in _WITHOUT_KERAS:
        # Keras's backend starts as the command line starts it: its C++ start-up lines (oneDNN
        # notes, "could not find cuda drivers") go nowhere; GANTRANSFER_BACKEND_LOGS=1 shows them.
        from gantransfer.backend import import_quietly

        import_quietly()
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
