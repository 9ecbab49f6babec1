"""Pictures of what networks learned: each is a non-empty image of the expected size."""

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gantransfer import visualize as vis
from gantransfer.cli import cli
from gantransfer.data import load_dataset
from gantransfer.errors import GantransferError
from gantransfer.gan.models import build_discriminator
from gantransfer.transfer_learning.classifiers import build_classifier
from gantransfer.transfer_learning.trunks import TrunkArchitecture, build_gan_trunk


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", image_size=32, seed=0)


@pytest.fixture(scope="module")
def classifier(digits):
    """A small GAN-trunk classifier trained for a few epochs on real digits."""
    keras.utils.set_random_seed(0)
    model = build_classifier(build_gan_trunk(TrunkArchitecture(32, 1, width=0.25, kernel_size=3)),
                             10, trunk_training=False)
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(digits.train.x.astype("float32"), digits.train.y, epochs=5, batch_size=32, verbose=0)
    return model


def test_filter_grid_tiles_every_first_layer_kernel():
    grid = vis.filter_grid(build_discriminator(32, 1, width=0.25, kernel_size=5))
    # 16 filters of 5x5 in a 4x4 grid with 1-pixel borders: 4 * 6 + 1 = 25.
    assert grid.shape == (25, 25, 1) and grid.dtype == np.uint8 and grid.std() > 0
    colour = vis.filter_grid(build_discriminator(32, 3, width=0.125, kernel_size=3))
    assert colour.shape[-1] == 3


def test_feature_maps_of_a_discriminator_and_of_a_nested_trunk(classifier, digits):
    d = build_discriminator(32, 1, width=0.125)
    x = vis.model_input(d, digits.test.x[:1])[0]
    assert x.min() >= -1 and x.max() <= 1  # a discriminator takes the GAN's range
    maps = vis.feature_maps(d, x, "block2_conv")
    assert maps.shape == (4 * 9 + 1, 4 * 9 + 1, 1) and maps.std() > 0  # 16 maps of 8x8
    inner = vis.feature_maps(classifier, digits.test.x[0].astype("float32"), "block1_conv")
    assert inner.shape == (4 * 17 + 1, 4 * 17 + 1, 1)  # 16 maps of 16x16


def test_grad_cam_points_somewhere_for_the_predicted_class(classifier, digits):
    image = digits.test.x[3].astype("float32")
    heatmap, predicted = vis.grad_cam(classifier, image)
    assert heatmap.shape == (32, 32) and heatmap.max() == pytest.approx(1.0)
    assert heatmap.min() >= 0 and (heatmap > 0.05).mean() < 0.95  # not flat everywhere
    assert predicted == int(np.argmax(classifier.predict(image[None], verbose=0)))
    other, index = vis.grad_cam(classifier, image, class_index=(predicted + 1) % 10)
    assert index == (predicted + 1) % 10 and not np.allclose(other, heatmap)
    overlay = vis.grad_cam_overlay(image, heatmap)
    assert overlay.shape == (32, 32, 3) and overlay.dtype == np.uint8


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embedding_figure(tmp_path, classifier, digits, method):
    pixels = digits.test.x[:150]
    points = vis.embed(vis.trunk_features(classifier, pixels), method)
    assert points.shape == (150, 2)
    path = vis.embedding_figure({"gan trunk": (points, digits.test.y[:150]),
                                 "pixels": (vis.embed(pixels, method), digits.test.y[:150])},
                                tmp_path / "e.png", digits.class_names, method)
    image = np.asarray(Image.open(path))
    assert image.shape[1] == 2 * 420 and image.shape[0] == 380 and image.std() > 0


def test_visualize_command(tmp_path, classifier):
    run = tmp_path / "run"
    run.mkdir()
    build_discriminator(32, 1, width=0.125).save(run / "discriminator.keras")
    (run / "config.yaml").write_text("data:\n  dataset: digits\n")
    result = CliRunner().invoke(cli, ["visualize", str(run), "--out-dir", str(tmp_path / "pics"),
                                      "--embedding-images", "100"])
    assert result.exit_code == 0, result.output
    made = json.loads((tmp_path / "pics/visualize.json").read_text())
    assert {"filters", "feature_maps", "embedding"} <= set(made) and "gradcam" not in made
    for name in ("filters.png", "feature_maps.png", "embedding.png"):
        assert np.asarray(Image.open(tmp_path / "pics" / name)).size > 0
    classifier.save(tmp_path / "clf.keras")
    result = CliRunner().invoke(cli, ["visualize", str(tmp_path / "clf.keras"), "--index", "3",
                                      "--out-dir", str(tmp_path / "pics2"),
                                      "--embedding-images", "100"])
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(tmp_path / "pics2/gradcam.png")).shape[-1] == 3
    again = CliRunner().invoke(cli, ["visualize", str(run), "--out-dir", str(tmp_path / "pics")])
    assert again.exit_code == 1 and "already holds pictures" in again.output
    bad = CliRunner().invoke(cli, ["visualize", str(run), "--layer", "nope",
                                   "--out-dir", str(tmp_path / "pics3")])
    assert bad.exit_code == 1 and "no layer 'nope'" in bad.output and "block1_conv" in bad.output


def test_compare_pictures_embed_every_kind_of_trunk(tmp_path, digits):
    from gantransfer.config import load_config
    from gantransfer.workflows.pictures import report_pictures

    config = load_config("digits", ["transfer.strategies=gan-frozen,imagenet-frozen",
                                    "transfer.backbone_weights=none",
                                    "transfer.backbone_input_size=32", "transfer.bn_images=50"])
    disc = build_discriminator(32, 1, width=0.125)
    figures = report_pictures(config, tmp_path, disc, digits, results=[])
    titles = [f["title"] for f in figures]
    assert titles == ["First-layer filters of the discriminator", "Discriminator feature maps",
                      "Which trunk separates the classes before any label?"]
    embedding = np.asarray(Image.open(figures[-1]["png"]))
    # GAN trunk, random trunk, ImageNet backbone and pixels: four panels, three per row.
    assert embedding.shape[:2] == (2 * 380, 3 * 420)


def test_visualize_model_on_a_classifier_with_an_image_file(tmp_path, classifier, digits):
    from gantransfer.workflows.pictures import visualize_model

    classifier.save(tmp_path / "clf.keras")
    Image.fromarray(digits.test.x[5][..., 0]).save(tmp_path / "five.png")
    written = visualize_model(tmp_path / "clf.keras", image_file=tmp_path / "five.png",
                              layers=["block2_conv"], class_index=4, embedding_images=60,
                              out_dir=tmp_path / "pics")
    assert list(written) == ["filters", "feature_maps", "gradcam", "embedding"]
    assert all(path.is_file() and path.parent == tmp_path / "pics" for path in written.values())
    record = json.loads((tmp_path / "pics/visualize.json").read_text())
    assert record["gradcam_class"] == 4 and record["layers"] == ["block2_conv"]
    assert record["dataset"] == "digits" and record["model"] == str(tmp_path / "clf.keras")
    # block2_conv alone: 32 maps of 8x8 in a 6x6 grid, upscaled to at least 256 pixels wide.
    maps = np.asarray(Image.open(written["feature_maps"]))
    assert maps.shape[1] % (6 * 9 + 1) == 0 and maps.shape[1] // (6 * 9 + 1) >= 256 // 55
    with pytest.raises(GantransferError, match="already holds pictures"):
        visualize_model(tmp_path / "clf.keras", out_dir=tmp_path / "pics")
    again = visualize_model(tmp_path / "clf.keras", index=2, class_index=1, embedding_images=60,
                            out_dir=tmp_path / "pics", overwrite=True)
    assert json.loads((tmp_path / "pics/visualize.json").read_text())["gradcam_class"] == 1
    assert set(again) == set(written)


def test_visualize_model_reads_the_run_folders_dataset(tmp_path):
    from gantransfer.workflows.pictures import visualize_model

    run = tmp_path / "run"
    run.mkdir()
    build_discriminator(32, 1, width=0.125).save(run / "discriminator.keras")
    images = np.random.default_rng(0).integers(0, 256, (12, 32, 32), dtype="uint8")
    np.savez(tmp_path / "unlabeled.npz", x=images)
    (run / "config.yaml").write_text(f"data:\n  dataset: {tmp_path / 'unlabeled.npz'}\n")
    written = visualize_model(run, index=2, out_dir=tmp_path / "pics")  # 3 of 12 are test images
    # Unlabeled images: nothing to colour an embedding by; a discriminator: no Grad-CAM.
    assert list(written) == ["filters", "feature_maps"]
    record = json.loads((tmp_path / "pics/visualize.json").read_text())
    assert record["dataset"] == str(tmp_path / "unlabeled.npz")
    assert record["model"] == str(run / "discriminator.keras")
    with pytest.raises(GantransferError, match="received 3, expected 0..2"):
        visualize_model(run, index=3, out_dir=tmp_path / "other")
    assert not (tmp_path / "other").exists()
    with pytest.raises(GantransferError, match="neither a .keras model nor a train-gan run"):
        visualize_model(tmp_path, out_dir=tmp_path / "other")


@pytest.mark.parametrize("arguments, message", [
    ({"embedding_images": 1}, "--embedding-images: received 1, expected at least 3"),
    ({"class_index": 10}, "--class: received 10, expected 0..9"),
    ({"class_index": -1}, "--class: received -1, expected 0..9"),
])
def test_out_of_range_visualize_arguments_are_refused_before_any_picture(tmp_path, classifier,
                                                                         arguments, message):
    from gantransfer.workflows.pictures import visualize_model

    model_file = tmp_path / "classifier.keras"
    classifier.save(model_file)
    with pytest.raises(GantransferError, match=message):
        visualize_model(model_file, out_dir=tmp_path / "pics", **arguments)
    assert not (tmp_path / "pics").exists()


def test_grad_cam_weighs_the_last_conv_maps_as_the_network_passes_them_on(classifier, digits):
    image = digits.test.x[0].astype("float32")
    default, index = vis.grad_cam(classifier, image)
    activated, _ = vis.grad_cam(classifier, image, class_index=index, layer="block3_lrelu")
    raw, _ = vis.grad_cam(classifier, image, class_index=index, layer="block3_conv")
    np.testing.assert_allclose(default, activated, atol=1e-6)
    assert not np.allclose(default, raw, atol=1e-3)  # before BatchNorm and LeakyReLU: another map


def test_an_imagenet_backbone_classifier_can_be_looked_into(tmp_path, digits):
    """The backbone sits inside the trunk, behind resizing and preprocessing: its layers must be
    reached through them, from the classifier's own pixels."""
    from gantransfer.transfer_learning.backbones import build_backbone
    from gantransfer.workflows.pictures import visualize_model

    trunk = build_backbone("mobilenet", image_size=32, channels=1, weights="none", input_size=32,
                           alpha=0.25)
    model = build_classifier(trunk, 10, kind="gap", trunk_training=None, name="imagenet_frozen")
    image = digits.test.x[0].astype("float32")
    heatmap, _ = vis.grad_cam(model, image)
    assert heatmap.shape == (32, 32) and np.isfinite(heatmap).all()
    assert vis.feature_maps(model, image, "conv_pw_13").ndim == 3
    assert vis.trunk_features(model, digits.test.x[:4]).shape[0] == 4
    model.save(tmp_path / "imagenet.keras")
    written = visualize_model(tmp_path / "imagenet.keras", layers=["conv1", "conv_pw_13"],
                              embedding_images=20, out_dir=tmp_path / "pics")
    assert sorted(written) == ["embedding", "feature_maps", "filters", "gradcam"]


def test_a_layer_without_maps_is_refused_before_any_picture(tmp_path, classifier):
    from gantransfer.workflows.pictures import visualize_model

    classifier.save(tmp_path / "classifier.keras")
    with pytest.raises(GantransferError, match="layer 'head_dense' gives .*not maps to draw; "
                                               "pick a conv layer: block1_conv"):
        visualize_model(tmp_path / "classifier.keras", layers=["block1_conv", "head_dense"],
                        out_dir=tmp_path / "pics")
    assert not (tmp_path / "pics").exists()


def test_the_embedding_legend_names_the_classes_present(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    named = []
    real_legend = Axes.legend

    def legend(self, handles, labels, *args, **kwargs):
        named.append(list(labels))
        return real_legend(self, handles, labels, *args, **kwargs)

    monkeypatch.setattr(Axes, "legend", legend)
    labels = np.array([0, 2, 5, 2, 0, 5, 5])
    points = np.random.default_rng(0).normal(size=(7, 2))
    vis.embedding_figure({"trunk": (points, labels)}, tmp_path / "e.png",
                         [f"class {i}" for i in range(10)])
    assert named == [["class 0", "class 2", "class 5"]]
