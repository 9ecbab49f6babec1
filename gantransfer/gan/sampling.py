"""Images from a trained generator: samples, grids, one file per image, latent interpolations.

:func:`write_samples` is the library behind ``gantransfer sample``.

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
from gantransfer.images import make_grid, save_png, to_uint8


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


def write_samples(source: str | Path | keras.Model, *, num_images: int = 64, seed: int = 0,
                  grid: str | Path | None = None, out_dir: str | Path | None = None,
                  interpolate_steps: int | None = None, overwrite: bool = False) -> list[Path]:
    """Draws images from a generator and writes them as one PNG grid, one PNG each, or both.

    The grid is upscaled (nearest) to about 256 pixels wide. One-per-image files are named
    ``sample_0000.png``, ``sample_0001.png``, ... With ``interpolate_steps``, each of the
    ``num_images`` rows of :func:`interpolate` is a grid row, and the files follow row by row.
    Nothing is written when any target file already exists, unless ``overwrite``.

    Args:
        source: A train-gan run folder, a generator ``.keras`` file, or a generator model.
        num_images: Images to draw; with ``interpolate_steps``, interpolation rows.
        seed: Seed of the noise; the same seed gives the same images.
        grid: A PNG file for all the images in one grid.
        out_dir: A folder for one PNG per image.
        interpolate_steps: Images per interpolation row (>= 2); None draws plain samples.
        overwrite: Replace existing files.

    Returns:
        The files written: the grid first (if asked for), then one per image.

    Raises:
        GantransferError: If neither ``grid`` nor ``out_dir`` is given, a number is out of range,
            or a target file exists and ``overwrite`` is false.
        RunFolderError: If ``source`` holds no generator.

    Example:
        >>> from gantransfer.gan.models import build_generator
        >>> generator = build_generator(28, 1, latent_dim=8, width=0.125)
        >>> [p.name for p in write_samples(generator, num_images=2, grid="grid.png", out_dir="each")]
        ['grid.png', 'sample_0000.png', 'sample_0001.png']
    """
    if grid is None and out_dir is None:
        raise GantransferError("samples need somewhere to go: pass a grid file, an out_dir, or both")
    if num_images < 1:
        raise GantransferError(f"num_images: received {num_images}, expected an integer >= 1")
    if interpolate_steps is not None and interpolate_steps < 2:
        raise GantransferError(f"interpolation steps: received {interpolate_steps}, expected an "
                               "integer >= 2")
    count = num_images * (interpolate_steps or 1)
    grid = Path(grid) if grid is not None else None
    files = [] if out_dir is None else [Path(out_dir) / f"sample_{i:04d}.png" for i in range(count)]
    existing = [str(path) for path in ([grid] if grid else []) + files if path.exists()]
    if existing and not overwrite:
        raise GantransferError(f"{existing[0]} already exists; pass --overwrite to replace it or "
                               "choose another --grid/--out-dir")
    if interpolate_steps is not None:
        rows = interpolate(source, pairs=num_images, steps=interpolate_steps, seed=seed)
        images, columns = rows.reshape(-1, *rows.shape[2:]), interpolate_steps
    else:
        images, columns = sample(source, num_images=num_images, seed=seed), None
    written = []
    if grid is not None:
        tiled = make_grid(images, columns=columns)
        save_png(tiled, grid, scale=max(1, 256 // tiled.shape[1]))
        written.append(grid)
    for image, path in zip(images, files):
        save_png(image, path)
        written.append(path)
    return written
