"""Sampling from a trained generator: determinism, grids, interpolation ends, the CLI."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gantransfer.cli import cli
from gantransfer.errors import RunFolderError
from gantransfer.gan.models import build_generator
from gantransfer.gan.sampling import interpolate, load_generator, sample


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
