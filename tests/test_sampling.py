"""Sampling from a trained generator: determinism, grids, interpolation ends, the CLI."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gantransfer.cli import cli
from gantransfer.errors import GantransferError, RunFolderError
from gantransfer.gan.models import build_generator
from gantransfer.gan.sampling import interpolate, load_generator, sample, write_samples


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder holding a (randomly initialised) grey generator."""
    folder = tmp_path_factory.mktemp("run")
    build_generator(28, 1, latent_dim=8, width=0.125, kernel_size=3).save(folder / "generator.keras")
    (folder / "config.yaml").write_text("{}\n")
    return folder


def test_same_seed_same_images_other_seed_other_images(run_dir):
    a = sample(run_dir, num_images=5, seed=3)
    b = sample(run_dir / "generator.keras", num_images=5, seed=3)
    c = sample(run_dir, num_images=5, seed=4)
    assert a.shape == (5, 28, 28, 1) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(sample(run_dir, num_images=2, seed=3), a[:2])


def test_colour_generators_give_colour_images():
    images = sample(build_generator(32, 3, latent_dim=4, width=0.125), num_images=2)
    assert images.shape == (2, 32, 32, 3)


def test_interpolation_ends_are_the_two_samples(run_dir):
    rows = interpolate(run_dir, pairs=3, steps=6, seed=9)
    ends = sample(run_dir, num_images=6, seed=9)
    assert rows.shape == (3, 6, 28, 28, 1)
    for i in range(3):
        np.testing.assert_array_equal(rows[i, 0], ends[2 * i])
        np.testing.assert_array_equal(rows[i, -1], ends[2 * i + 1])
    assert not np.array_equal(rows[0, 2], rows[0, 0])


def test_foreign_inputs(tmp_path):
    with pytest.raises(RunFolderError, match="is not a train-gan run folder"):
        load_generator(tmp_path)
    (tmp_path / "x.keras").write_bytes(b"junk")
    with pytest.raises(RunFolderError, match="cannot load"):
        load_generator(tmp_path / "x.keras")
    from gantransfer.gan.models import build_discriminator

    build_discriminator(28, 1, width=0.125).save(tmp_path / "d.keras")
    with pytest.raises(RunFolderError, match="is not a generator"):
        load_generator(tmp_path / "d.keras")


def test_cli_grid_files_and_interpolation(run_dir, tmp_path):
    runner = CliRunner()
    grid = tmp_path / "grid.png"
    result = runner.invoke(cli, ["sample", str(run_dir), "--num-images", "9", "--seed", "1",
                                 "--grid", str(grid)])
    assert result.exit_code == 0, result.output
    image = np.asarray(Image.open(grid))
    assert image.ndim == 2 and image.shape[0] == image.shape[1] >= 3 * 28  # 3x3 grid, grey
    result = runner.invoke(cli, ["sample", str(run_dir / "generator.keras"), "--num-images", "3",
                                 "--out-dir", str(tmp_path / "many")])
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "many").iterdir())
    assert [f.name for f in files] == ["sample_0000.png", "sample_0001.png", "sample_0002.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(files[0])),
                                  sample(run_dir, num_images=1, seed=0)[0, :, :, 0])
    walk = tmp_path / "walk.png"
    result = runner.invoke(cli, ["sample", str(run_dir), "--num-images", "2", "--interpolate", "5",
                                 "--grid", str(walk)])
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(walk)).shape[1] > np.asarray(Image.open(walk)).shape[0]  # 2 rows of 5


@pytest.mark.parametrize("args, expected", [
    (["--num-images", "0"], "--num-images: received 0"),
    (["--interpolate", "1", "--grid", "{tmp}/w.png"], "interpolation steps: received 1"),
])
def test_cli_bad_numbers(run_dir, tmp_path, args, expected):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = CliRunner().invoke(cli, ["sample", str(run_dir), *args])
    assert result.exit_code == 1 and expected in result.output and "Traceback" not in result.output


def test_cli_never_overwrites_without_asking(run_dir, tmp_path):
    grid = tmp_path / "mine.png"
    grid.write_bytes(b"precious")
    result = CliRunner().invoke(cli, ["sample", str(run_dir), "--grid", str(grid)])
    assert result.exit_code == 1 and "already exists; pass --overwrite" in result.output
    assert grid.read_bytes() == b"precious"
    result = CliRunner().invoke(cli, ["sample", str(run_dir), "--grid", str(grid), "--overwrite"])
    assert result.exit_code == 0 and grid.read_bytes() != b"precious"


def test_cli_folder_that_is_not_a_run(tmp_path):
    result = CliRunner().invoke(cli, ["sample", str(tmp_path), "--grid", str(tmp_path / "g.png")])
    assert result.exit_code == 1 and "is not a train-gan run folder" in result.output


def test_write_samples_grid_and_files_hold_the_samples(run_dir, tmp_path):
    written = write_samples(run_dir, num_images=4, seed=2, grid=tmp_path / "g.png",
                            out_dir=tmp_path / "each")
    assert written == [tmp_path / "g.png", *[tmp_path / f"each/sample_{i:04d}.png" for i in range(4)]]
    expected = sample(run_dir, num_images=4, seed=2)
    for i, path in enumerate(written[1:]):
        np.testing.assert_array_equal(np.asarray(Image.open(path)), expected[i, :, :, 0])
    grid = np.asarray(Image.open(written[0]))
    assert grid.ndim == 2 and grid.shape[0] == grid.shape[1] >= 2 * 28  # 2x2, upscaled


def test_write_samples_interpolation_is_one_row_per_pair(run_dir, tmp_path):
    written = write_samples(run_dir, num_images=2, seed=5, interpolate_steps=4,
                            grid=tmp_path / "walk.png", out_dir=tmp_path / "walk")
    assert len(written) == 1 + 2 * 4
    rows = interpolate(run_dir, pairs=2, steps=4, seed=5)
    np.testing.assert_array_equal(np.asarray(Image.open(written[1 + 4 + 3])), rows[1, 3, :, :, 0])
    grid = np.asarray(Image.open(written[0]))
    scale = grid.shape[1] // (4 * 28 + 5 * 2)  # make_grid pads 2 pixels around every tile
    assert grid.shape == ((2 * 28 + 3 * 2) * scale, (4 * 28 + 5 * 2) * scale)


def test_write_samples_writes_nothing_over_an_existing_file(run_dir, tmp_path):
    folder = tmp_path / "each"
    folder.mkdir()
    (folder / "sample_0002.png").write_bytes(b"precious")
    with pytest.raises(GantransferError, match="sample_0002.png already exists"):
        write_samples(run_dir, num_images=3, grid=tmp_path / "g.png", out_dir=folder)
    assert not (tmp_path / "g.png").exists() and sorted(p.name for p in folder.iterdir()) == [
        "sample_0002.png"]
    assert (folder / "sample_0002.png").read_bytes() == b"precious"
    write_samples(run_dir, num_images=3, out_dir=folder, overwrite=True)
    assert np.asarray(Image.open(folder / "sample_0002.png")).shape == (28, 28)


@pytest.mark.parametrize("kwargs, expected", [
    ({}, "pass a grid file, an out_dir, or both"),
    ({"grid": "g.png", "num_images": 0}, "num_images: received 0"),
    ({"grid": "g.png", "interpolate_steps": 1}, "interpolation steps: received 1"),
])
def test_write_samples_bad_input(run_dir, tmp_path, kwargs, expected):
    kwargs = {k: tmp_path / v if k == "grid" else v for k, v in kwargs.items()}
    with pytest.raises(GantransferError, match=expected):
        write_samples(run_dir, **kwargs)
    assert not list(tmp_path.iterdir())
