"""Typed run configuration: YAML in, validated dataclasses out, resolved YAML written back.

A config has one section per concern (``data``, ``gan``, ``train``). Every key can be set from a YAML
file and overridden from the command line as ``section.key=value``. Unknown keys, wrong types and
out-of-range values raise :class:`~gantransfer.errors.ConfigError` naming the key, the value received
and what is allowed.

Example:
    >>> from gantransfer.config import load_config
    >>> config = load_config(None, overrides=["gan.latent_dim=64", "train.epochs=2"])
    >>> config.gan.latent_dim, config.train.epochs
    (64, 2)
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from gantransfer.errors import ConfigError


def _check(key: str, value: Any, ok: bool, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: received {value!r}, expected {allowed}")


@dataclasses.dataclass
class DataConfig:
    """Which images to load and how to shape them.

    Attributes:
        dataset: A registered name (digits, mnist, fashion_mnist, cifar10, cifar100) or a path to an
            image folder, a ``.npz`` file or MNIST-format IDX files.
        image_size: Side length the images are resized to: 28, 32, 64 or a larger power of two.
        channels: 1 or 3 to convert, or null to keep the source's channels.
        validation_split: Fraction of the training split held out for validation.
        test_split: Fraction held out for testing, for sources without their own test split.
        labels_per_class: Per-class label budget drawn from the labeled training split, or null for all.
        max_in_memory_mb: Image folders larger than this (decoded) are streamed from disk.
    """

    dataset: str = "digits"
    image_size: int = 32
    channels: int | None = None
    validation_split: float = 0.1
    test_split: float = 0.2
    labels_per_class: int | None = None
    max_in_memory_mb: float = 2048.0

    def __post_init__(self) -> None:
        _check("data.dataset", self.dataset, bool(self.dataset.strip()), "a dataset name or path")
        _check("data.image_size", self.image_size, _valid_image_size(self.image_size),
               "28, 32, 64 or a larger power of two")
        _check("data.channels", self.channels, self.channels in (None, 1, 3), "1, 3 or null")
        _check("data.validation_split", self.validation_split, 0 <= self.validation_split < 1,
               "a fraction in [0, 1)")
        _check("data.test_split", self.test_split, 0 <= self.test_split < 1, "a fraction in [0, 1)")
        _check("data.labels_per_class", self.labels_per_class,
               self.labels_per_class is None or self.labels_per_class >= 1, "an integer >= 1 or null")
        _check("data.max_in_memory_mb", self.max_in_memory_mb, self.max_in_memory_mb > 0,
               "a number of megabytes > 0")


def _valid_image_size(size: int) -> bool:
    return size == 28 or (size >= 32 and size & (size - 1) == 0)


@dataclasses.dataclass
class GANConfig:
    """DCGAN architecture and optimiser (Radford et al. 2015 defaults).

    Attributes:
        latent_dim: Length of the generator's noise vector z.
        width: Width multiplier on the base 64 filters (1.0 is the paper's 64-128-256...).
        kernel_size: Convolution kernel size in both networks.
        learning_rate: Adam learning rate of both networks.
        beta_1: Adam beta_1 of both networks.
        leaky_relu_slope: Negative slope of the discriminator's LeakyReLU.
    """

    latent_dim: int = 100
    width: float = 1.0
    kernel_size: int = 5
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    leaky_relu_slope: float = 0.2

    def __post_init__(self) -> None:
        _check("gan.latent_dim", self.latent_dim, self.latent_dim >= 1, "an integer >= 1")
        _check("gan.width", self.width, 0 < self.width <= 16 and round(64 * self.width) >= 1,
               "a multiplier in (0, 16] giving at least one filter")
        _check("gan.kernel_size", self.kernel_size, 1 <= self.kernel_size <= 9, "an integer in [1, 9]")
        _check("gan.learning_rate", self.learning_rate, 0 < self.learning_rate < 1, "a number in (0, 1)")
        _check("gan.beta_1", self.beta_1, 0 <= self.beta_1 < 1, "a number in [0, 1)")
        _check("gan.leaky_relu_slope", self.leaky_relu_slope, 0 <= self.leaky_relu_slope < 1,
               "a number in [0, 1)")


@dataclasses.dataclass
class TrainConfig:
    """How long and how to train, and what to write along the way.

    Attributes:
        epochs: Number of passes over the training images.
        batch_size: Images per step.
        seed: Seed of every random draw: splits, shuffling, noise, initial weights.
        deterministic: Ask TensorFlow for deterministic kernels (slower; bitwise-repeatable runs).
        keep_checkpoints: How many recent checkpoints to keep; 0 keeps all.
        sample_images: Images in each epoch's sample grid (a square number fills the grid).
        tensorboard: Also write TensorBoard logs into the run folder.
        verbose: Keras progress display: 0 silent, 1 progress bar, 2 one line per epoch.
    """

    epochs: int = 25
    batch_size: int = 128
    seed: int = 0
    deterministic: bool = False
    keep_checkpoints: int = 3
    sample_images: int = 64
    tensorboard: bool = False
    verbose: int = 1

    def __post_init__(self) -> None:
        _check("train.epochs", self.epochs, self.epochs >= 1, "an integer >= 1")
        _check("train.batch_size", self.batch_size, self.batch_size >= 1, "an integer >= 1")
        _check("train.seed", self.seed, 0 <= self.seed < 2**32, "an integer in [0, 2**32)")
        _check("train.keep_checkpoints", self.keep_checkpoints, self.keep_checkpoints >= 0,
               "an integer >= 0 (0 keeps all)")
        _check("train.sample_images", self.sample_images, 1 <= self.sample_images <= 1024,
               "an integer in [1, 1024]")
        _check("train.verbose", self.verbose, self.verbose in (0, 1, 2), "0, 1 or 2")


@dataclasses.dataclass
class Config:
    """A whole run's configuration: one typed section per concern.

    Example:
        >>> Config().data.dataset
        'digits'
    """

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    gan: GANConfig = dataclasses.field(default_factory=GANConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Returns the config as plain nested dicts, ready for YAML."""
        return dataclasses.asdict(self)


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Checks ``value`` against a field annotation, allowing int where float is expected."""
    hint = annotation
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        _check(key, value, type(None) in options, _type_name(options))
        return None
    for option in options:
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is str and isinstance(value, str):
            return value
    raise ConfigError(f"{key}: received {value!r} ({type(value).__name__}), expected {_type_name(options)}")


def _type_name(options: tuple) -> str:
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string",
             type(None): "null"}
    return " or ".join(names.get(o, str(o)) for o in options)


def _unknown_key(key: str, valid: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    prefix = key.rsplit(".", 1)[0] + "." if "." in key else ""
    listed = ", ".join(prefix + v for v in sorted(valid))
    return ConfigError(f"unknown config key {key!r}{hint}; valid keys: {listed}")


def config_from_dict(raw: dict[str, Any] | None) -> Config:
    """Builds a validated :class:`Config` from nested dicts, as read from YAML.

    Args:
        raw: ``{"data": {...}, "gan": {...}, "train": {...}}``; missing keys take their defaults.

    Returns:
        The validated config.

    Raises:
        ConfigError: On an unknown key, a wrong type or an out-of-range value.

    Example:
        >>> config_from_dict({"train": {"epochs": 3}}).train.epochs
        3
    """
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config: received {type(raw).__name__}, expected a mapping of sections "
                          f"({', '.join(_fields(Config))})")
    sections = _fields(Config)
    built = {}
    for name in raw:
        if name not in sections:
            raise _unknown_key(str(name), list(sections))
    hints = typing.get_type_hints(Config)
    for name in sections:
        cls = hints[name]
        values = raw.get(name) or {}
        if not isinstance(values, dict):
            raise ConfigError(f"{name}: received {values!r}, expected a mapping of keys")
        field_hints = typing.get_type_hints(cls)
        kwargs = {}
        for key, value in values.items():
            if key not in field_hints:
                raise _unknown_key(f"{name}.{key}", list(field_hints))
            kwargs[key] = _coerce(f"{name}.{key}", value, field_hints[key])
        built[name] = cls(**kwargs)
    return Config(**built)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Splits ``section.key=value`` into a key path and a YAML-parsed value.

    Example:
        >>> parse_override("gan.latent_dim=64")
        (['gan', 'latent_dim'], 64)
    """
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected section.key=value, e.g. gan.latent_dim=64")
    key, _, value = text.partition("=")
    path = key.strip().split(".")
    if len(path) != 2 or not all(path):
        raise ConfigError(f"override {text!r}: expected section.key=value, e.g. train.epochs=5")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    return path, parsed


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Reads a YAML config file into nested dicts, with a one-line error on failure."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; pass an existing YAML file "
                          "(see configs/ for examples)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config file {str(path)!r} is not valid YAML{where}: "
                          f"{getattr(error, 'problem', error)}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"config file {str(path)!r}: expected a mapping of sections, received "
                          f"{type(raw).__name__}")
    return raw or {}


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Loads a YAML config (or the defaults) and applies ``section.key=value`` overrides.

    Args:
        path: A YAML file, or None for the built-in defaults.
        overrides: Strings such as ``"gan.latent_dim=64"``; values are parsed as YAML.

    Returns:
        The validated config.

    Raises:
        ConfigError: If the file is missing or invalid, or any key or value is not allowed.

    Example:
        >>> load_config(None, ["data.dataset=fashion_mnist"]).data.dataset
        'fashion_mnist'
    """
    raw = read_yaml(path) if path is not None else {}
    raw = {name: dict(values) if isinstance(values, dict) else values for name, values in raw.items()}
    for text in overrides:
        (section, key), value = parse_override(text)
        if section not in _fields(Config):
            raise _unknown_key(f"{section}.{key}", [f"{s}.*" for s in _fields(Config)])
        target = raw.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"{section}: received {target!r}, expected a mapping of keys")
        target[key] = value
    return config_from_dict(raw)


def save_config(config: Config, path: str | Path) -> None:
    """Writes the resolved config as YAML; :func:`load_config` reads it back to repeat the run."""
    from gantransfer.runs import atomic_write_text

    atomic_write_text(Path(path), yaml.safe_dump(config.to_dict(), sort_keys=False))
