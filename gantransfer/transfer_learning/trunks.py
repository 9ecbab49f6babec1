"""Classifier trunks with the discriminator's architecture, and importing a trained one's weights.

A GAN trunk takes raw pixels in [0, 255], rescales them to the GAN's [-1, 1] (layer
``to_gan_range``), then runs the discriminator's conv blocks (``block1_conv`` ... ``blockN_lrelu``).
The discriminator's real/fake head (``head_*``) is never part of it.

Before a GAN trunk is frozen or probed, :func:`reestimate_batchnorm` (from
:mod:`gantransfer.gan.features`, re-exported here) replaces its BatchNorm moving statistics with the
exact statistics of real target images: during GAN training they were accumulated partly on
generated images.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import keras

from gantransfer.data.transforms import gan_range_layer
from gantransfer.errors import GantransferError, RunFolderError
from gantransfer.gan.features import reestimate_batchnorm  # noqa: F401 (re-exported)
from gantransfer.gan.models import block_filters, discriminator_blocks, spatial_plan

logger = logging.getLogger(__name__)

HEAD_PREFIX = "head_"


class WeightImportError(GantransferError, ValueError):
    """A discriminator's weights do not fit the trunk: a layer is missing or a shape differs."""


@dataclass
class TrunkArchitecture:
    """What it takes to rebuild a discriminator's trunk.

    Example:
        >>> TrunkArchitecture(image_size=32, channels=1).num_blocks
        3
    """

    image_size: int
    channels: int
    width: float = 1.0
    kernel_size: int = 5
    leaky_relu_slope: float = 0.2

    @property
    def num_blocks(self) -> int:
        return spatial_plan(self.image_size)[1]

    @property
    def filters(self) -> list[int]:
        """Filters of each conv block.

        Example:
            >>> TrunkArchitecture(image_size=32, channels=1, width=0.25).filters
            [16, 32, 64]
        """
        return block_filters(self.num_blocks, self.width)


@dataclass
class ImportReport:
    """What :func:`import_discriminator_weights` copied and what it left out, by layer name."""

    source: str
    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def build_gan_trunk(architecture: TrunkArchitecture, name: str = "gan_trunk", *,
                    dropout: float = 0.0, l2: float = 0.0) -> keras.Model:
    """Builds a randomly initialised trunk with the discriminator's architecture.

    Args:
        architecture: Image size, channels, width, kernel size and LeakyReLU slope of the GAN.
        name: Model name.
        dropout: Spatial dropout after every block (active only where the trunk runs in training
            mode: trained from scratch).
        l2: Weight decay on every conv kernel.

    Returns:
        A ``keras.Model`` from raw ``(image_size, image_size, channels)`` pixels in [0, 255] to the
        last conv block's feature map.

    Example:
        >>> trunk = build_gan_trunk(TrunkArchitecture(32, 1, width=0.125))
        >>> trunk.output_shape
        (None, 4, 4, 32)
    """
    a = architecture
    inputs = keras.Input((a.image_size, a.image_size, a.channels), name="pixels")
    x = gan_range_layer("to_gan_range")(inputs)
    x = discriminator_blocks(x, a.num_blocks, width=a.width, kernel_size=a.kernel_size,
                             leaky_relu_slope=a.leaky_relu_slope, dropout=dropout, l2=l2)
    return keras.Model(inputs, x, name=name)


def load_discriminator(source: str | Path | keras.Model) -> keras.Model:
    """Loads a discriminator from a ``.keras`` file or a train-gan run folder (or passes one through).

    Raises:
        RunFolderError: If the path is neither a ``.keras`` file nor a run folder with one.
    """
    if isinstance(source, keras.Model):
        return source
    path = Path(source)
    if path.is_dir():
        path = path / "discriminator.keras"
        if not path.is_file():
            raise RunFolderError(f"{str(source)!r} holds no discriminator.keras; pass a train-gan run "
                                 "folder or a discriminator .keras file")
    if not path.is_file():
        raise RunFolderError(f"discriminator {str(path)!r} does not exist; pass a train-gan run "
                             "folder or a discriminator .keras file")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many kinds for a foreign or corrupt file.
        raise RunFolderError(f"cannot load {str(path)!r} as a Keras model: "
                             f"{str(error).splitlines()[0] if str(error) else type(error).__name__}"
                             ) from None


def architecture_of(discriminator: keras.Model) -> TrunkArchitecture:
    """Reads the trunk architecture off a discriminator built by ``build_discriminator``.

    Raises:
        WeightImportError: If the model has no ``block1_conv`` (not a gantransfer discriminator).
    """
    names = {layer.name for layer in discriminator.layers}
    if "block1_conv" not in names:
        raise WeightImportError(f"model {discriminator.name!r} has no layer 'block1_conv': it is not "
                                "a gantransfer discriminator")
    _, size, _, channels = discriminator.input_shape
    first = discriminator.get_layer("block1_conv")
    slope = getattr(discriminator.get_layer("block1_lrelu"), "negative_slope", 0.2) \
        if "block1_lrelu" in names else 0.2
    return TrunkArchitecture(image_size=int(size), channels=int(channels),
                             width=first.filters / 64.0, kernel_size=int(first.kernel_size[0]),
                             leaky_relu_slope=float(slope))


def import_discriminator_weights(trunk: keras.Model, source: str | Path | keras.Model) -> ImportReport:
    """Copies conv and BatchNorm weights by layer name from a trained discriminator into a trunk.

    Every weight's shape is checked; the real/fake head is never copied; every trunk layer that has
    weights must receive them.

    Args:
        trunk: A trunk from :func:`build_gan_trunk`.
        source: A discriminator model, its ``.keras`` file, or a train-gan run folder.

    Returns:
        An :class:`ImportReport` listing copied and skipped layers.

    Raises:
        WeightImportError: On a missing layer or a shape mismatch, naming the layer and both shapes.

    Example:
        >>> from gantransfer.gan.models import build_discriminator
        >>> d = build_discriminator(32, 1, width=0.125)
        >>> trunk = build_gan_trunk(architecture_of(d))
        >>> import_discriminator_weights(trunk, d).skipped
        ['head_dense']
    """
    discriminator = load_discriminator(source)
    report = ImportReport(source=str(source) if not isinstance(source, keras.Model) else source.name)
    trunk_layers = {layer.name: layer for layer in trunk.layers if layer.weights}
    for layer in discriminator.layers:
        if not layer.weights:
            continue
        if layer.name.startswith(HEAD_PREFIX):
            report.skipped.append(layer.name)
            continue
        target = trunk_layers.pop(layer.name, None)
        if target is None:
            raise WeightImportError(
                f"discriminator layer {layer.name!r} has no counterpart in the trunk; build the trunk "
                "with the discriminator's image size and width (architecture_of)")
        if len(target.weights) != len(layer.weights):
            raise WeightImportError(f"layer {layer.name!r}: the discriminator has "
                                    f"{len(layer.weights)} weights, the trunk {len(target.weights)}")
        for mine, theirs in zip(target.weights, layer.weights):
            if tuple(mine.shape) != tuple(theirs.shape):
                raise WeightImportError(
                    f"layer {layer.name!r} weight {theirs.name!r}: discriminator shape "
                    f"{tuple(theirs.shape)}, trunk shape {tuple(mine.shape)}; build the trunk with "
                    "the discriminator's architecture (architecture_of)")
        for mine, theirs in zip(target.weights, layer.weights):
            # A copy: on JAX, assigning a variable shares its array, and a jitted fit donates (and
            # so deletes) the arrays of the model it trains, which would pull them from the other.
            mine.assign(keras.ops.convert_to_numpy(theirs))
        report.copied.append(layer.name)
    if trunk_layers:
        raise WeightImportError(f"trunk layers {sorted(trunk_layers)} have no counterpart in the "
                                "discriminator; it has fewer blocks than the trunk")
    logger.info("imported %d layers from %s (skipped the head: %s)", len(report.copied),
                report.source, ", ".join(report.skipped) or "none")
    return report


def trunk_from_discriminator(source: str | Path | keras.Model, name: str = "gan_trunk", *,
                             dropout: float = 0.0, l2: float = 0.0
                             ) -> tuple[keras.Model, ImportReport]:
    """Builds a trunk with a discriminator's architecture and copies its weights in.

    ``dropout`` and ``l2`` regularise the trunk as in :func:`build_gan_trunk`.

    Example:
        >>> from gantransfer.gan.models import build_discriminator
        >>> trunk, report = trunk_from_discriminator(build_discriminator(28, 1, width=0.125))
        >>> trunk.output_shape, report.copied
        ((None, 7, 7, 16), ['block1_conv', 'block2_conv', 'block2_bn'])
    """
    discriminator = load_discriminator(source)
    trunk = build_gan_trunk(architecture_of(discriminator), name=name, dropout=dropout, l2=l2)
    report = import_discriminator_weights(trunk, discriminator)
    if not isinstance(source, keras.Model):
        report.source = str(source)
    return trunk, report
