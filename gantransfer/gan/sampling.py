"""Images from a trained generator: samples, grids, one file per image, latent interpolations.

Noise comes from ``np.random.default_rng(seed)``, so the same seed gives the same images on any
backend and machine. Images come out as uint8 in the dataset's channel format: grey generators give
grey images, colour generators colour ones.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from gantransfer.data.transforms import GAN_RANGE
from gantransfer.errors import GantransferError, RunFolderError
from gantransfer.images import to_uint8


def load_generator(source: str | Path | keras.Model) -> keras.Model:
    """Loads a generator from a train-gan run folder or a ``.keras`` file (or passes one through).

    Raises:
        RunFolderError: If the path is missing, is not a run folder, or holds no generator.

    Example:
        >>> generator = load_generator("outputs/fmnist-gan")  # doctest: +SKIP
        >>> generator.input_shape  # doctest: +SKIP
        (None, 100)
    """
    if isinstance(source, keras.Model):
        return source
    path = Path(source)
    if path.is_dir():
        if not (path / "generator.keras").is_file():
            raise RunFolderError(f"{str(path)!r} is not a train-gan run folder (no generator.keras); "
                                 "pass a run folder or a generator .keras file")
        path = path / "generator.keras"
    if not path.is_file():
        raise RunFolderError(f"generator {str(path)!r} does not exist; pass a train-gan run folder "
                             "or a generator .keras file")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many kinds for a foreign or corrupt file.
        raise RunFolderError(f"cannot load {str(path)!r} as a Keras model: "
                             f"{str(error).splitlines()[0] if str(error) else type(error).__name__}"
                             ) from None
    shape = model.input_shape
    if not (isinstance(shape, tuple) and len(shape) == 2) or len(model.output_shape) != 4:
        raise RunFolderError(f"{str(path)!r} is not a generator: it maps {shape} to "
                             f"{model.output_shape}, expected (batch, latent_dim) to images")
    return model


def latent_noise(generator: keras.Model, num_images: int, seed: int = 0) -> np.ndarray:
    """Standard-normal noise for ``num_images`` images, drawn from ``seed``."""
    if num_images < 1:
        raise GantransferError(f"num_images: received {num_images}, expected an integer >= 1")
    latent_dim = int(generator.input_shape[-1])
    return np.random.default_rng(seed).standard_normal((num_images, latent_dim)).astype("float32")


def generate(generator: keras.Model, noise: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Runs the generator in inference mode; returns uint8 ``(N, H, W, C)`` images."""
    images = generator.predict(noise, batch_size=batch_size, verbose=0)
    return to_uint8(images, GAN_RANGE)


def sample(source: str | Path | keras.Model, num_images: int = 64, seed: int = 0) -> np.ndarray:
    """Draws images from a trained generator.

    Args:
        source: A train-gan run folder, a generator ``.keras`` file, or a generator model.
        num_images: How many images.
        seed: Seed of the noise; the same seed gives the same images.

    Returns:
        uint8 ``(num_images, H, W, C)`` images in [0, 255].

    Example:
        >>> from gantransfer.gan.models import build_generator
        >>> images = sample(build_generator(28, 1, latent_dim=8, width=0.125), num_images=4, seed=1)
        >>> images.shape, images.dtype.name
        ((4, 28, 28, 1), 'uint8')
    """
    generator = load_generator(source)
    return generate(generator, latent_noise(generator, num_images, seed))


def interpolate(source: str | Path | keras.Model, pairs: int = 4, steps: int = 8,
                seed: int = 0) -> np.ndarray:
    """Walks the latent space in straight lines between random pairs of points.

    Row ``i`` starts at the image of noise ``z[2i]`` and ends at that of ``z[2i+1]``, where ``z`` is
    what :func:`sample` draws for ``2 * pairs`` images with the same seed: the ends are those
    samples.

    Args:
        source: A run folder, a generator ``.keras`` file, or a generator model.
        pairs: Number of rows.
        steps: Images per row, ends included (>= 2).
        seed: Seed of the noise.

    Returns:
        uint8 ``(pairs, steps, H, W, C)`` images.

    Example:
        >>> from gantransfer.gan.models import build_generator
        >>> interpolate(build_generator(28, 1, latent_dim=8, width=0.125), 2, 5).shape
        (2, 5, 28, 28, 1)
    """
    if steps < 2:
        raise GantransferError(f"interpolation steps: received {steps}, expected an integer >= 2")
    if pairs < 1:
        raise GantransferError(f"interpolation pairs: received {pairs}, expected an integer >= 1")
    generator = load_generator(source)
    ends = latent_noise(generator, 2 * pairs, seed).reshape(pairs, 2, -1)
    t = np.linspace(0.0, 1.0, steps, dtype="float32")[None, :, None]
    path = (1 - t) * ends[:, :1] + t * ends[:, 1:]
    images = generate(generator, path.reshape(pairs * steps, -1))
    return images.reshape(pairs, steps, *images.shape[1:])
