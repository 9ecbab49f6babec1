"""GAN trunks: weights imported by name with shapes checked, and BatchNorm re-estimation."""

import keras
import numpy as np
import pytest

from gantransfer.errors import RunFolderError
from gantransfer.gan.models import build_discriminator
from gantransfer.transfer_learning.trunks import (TrunkArchitecture, WeightImportError, architecture_of,
                                         build_gan_trunk, import_discriminator_weights,
                                         reestimate_batchnorm, trunk_from_discriminator)


def _trained_looking_discriminator(size=32, width=0.125):
    d = build_discriminator(size, 1, width=width, kernel_size=3)
    rng = np.random.default_rng(0)
    for weight in d.weights:  # distinct values everywhere, BatchNorm statistics included
        weight.assign(rng.normal(size=weight.shape).astype("float32") * 0.1
                      + (1.0 if "variance" in weight.path else 0.0))
    return d


def test_import_copies_every_trunk_weight_by_name_and_never_the_head(tmp_path):
    d = _trained_looking_discriminator()
    d.save(tmp_path / "discriminator.keras")
    trunk = build_gan_trunk(architecture_of(d))
    report = import_discriminator_weights(trunk, tmp_path)  # a run folder works too
    assert report.copied == ["block1_conv", "block2_conv", "block2_bn", "block3_conv", "block3_bn"]
    assert report.skipped == ["head_dense"]
    for name in report.copied:
        for mine, theirs in zip(trunk.get_layer(name).weights, d.get_layer(name).weights):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    assert not any(layer.name.startswith("head_") for layer in trunk.layers)


def test_trunk_matches_the_discriminator_features():
    d = _trained_looking_discriminator()
    trunk, _ = trunk_from_discriminator(d)
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 1)).astype("float32")
    inner = keras.Model(d.input, d.get_layer("block3_lrelu").output)
    np.testing.assert_allclose(trunk(pixels, training=False),
                               inner(pixels / 127.5 - 1.0, training=False), atol=1e-5)


def test_shape_mismatch_names_the_layer_and_both_shapes():
    d = _trained_looking_discriminator(width=0.125)
    wider = build_gan_trunk(TrunkArchitecture(32, 1, width=0.25, kernel_size=3))
    with pytest.raises(WeightImportError, match=r"layer 'block1_conv' weight 'kernel': "
                                                r"discriminator shape \(3, 3, 1, 8\), trunk shape "
                                                r"\(3, 3, 1, 16\)"):
        import_discriminator_weights(wider, d)


def test_missing_layers_are_errors():
    d = _trained_looking_discriminator(size=64)  # four blocks
    with pytest.raises(WeightImportError, match="'block4_conv' has no counterpart in the trunk"):
        import_discriminator_weights(build_gan_trunk(TrunkArchitecture(32, 1, 0.125, 3)), d)
    small = _trained_looking_discriminator(size=16)  # two blocks
    with pytest.raises(WeightImportError, match=r"trunk layers \['block3_bn', 'block3_conv'\]"):
        import_discriminator_weights(build_gan_trunk(TrunkArchitecture(32, 1, 0.125, 3)), small)


def test_foreign_sources_are_clear_errors(tmp_path):
    with pytest.raises(RunFolderError, match="holds no discriminator.keras"):
        trunk_from_discriminator(tmp_path)
    (tmp_path / "bad.keras").write_bytes(b"not a model")
    with pytest.raises(RunFolderError, match="cannot load"):
        trunk_from_discriminator(tmp_path / "bad.keras")
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(WeightImportError, match="not a gantransfer discriminator"):
        trunk_from_discriminator(plain)


def test_batchnorm_reestimation_gives_the_exact_statistics():
    trunk = build_gan_trunk(TrunkArchitecture(32, 1, width=0.125, kernel_size=3))
    images = np.random.default_rng(2).uniform(0, 255, (50, 32, 32, 1)).astype("float32")
    assert reestimate_batchnorm(trunk, images, batch_size=7) == 2
    for name in ("block2_bn", "block3_bn"):
        layer = trunk.get_layer(name)
        inputs = keras.ops.convert_to_numpy(
            keras.Model(trunk.input, layer.input)(images, training=False))
        np.testing.assert_allclose(layer.moving_mean.numpy(), inputs.mean(axis=(0, 1, 2)),
                                   rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(layer.moving_variance.numpy(), inputs.var(axis=(0, 1, 2)),
                                   rtol=1e-3, atol=1e-5)
    # In inference mode, block 3's BatchNorm output is now standardised over these images.
    normalised = keras.ops.convert_to_numpy(
        keras.Model(trunk.input, trunk.get_layer("block3_bn").output)(images))
    assert np.abs(normalised.mean(axis=(0, 1, 2))).max() < 1e-3


def test_trunk_dropout_and_l2_regularise_and_still_take_the_discriminators_weights():
    d = _trained_looking_discriminator()
    plain, _ = trunk_from_discriminator(d)
    regularised, report = trunk_from_discriminator(d, dropout=0.3, l2=0.01)
    assert report.copied == ["block1_conv", "block2_conv", "block2_bn", "block3_conv", "block3_bn"]
    names = [layer.name for layer in regularised.layers]
    assert [n for n in names if n.endswith("_dropout")] == [f"block{i}_dropout" for i in (1, 2, 3)]
    x = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 1)).astype("float32")
    # Inference mode: the same features as the plain trunk; training mode: maps dropped.
    np.testing.assert_allclose(regularised(x, training=False), plain(x, training=False), atol=1e-5)
    dropped = keras.ops.convert_to_numpy(regularised(x, training=True))
    assert (dropped.reshape(4, -1, dropped.shape[-1]).max(axis=1) == 0).any()
    # One L2 loss per conv kernel, 0.01 * sum of squares.
    kernels = [regularised.get_layer(f"block{i}_conv").kernel for i in (1, 2, 3)]
    expected = sum(0.01 * float(np.sum(keras.ops.convert_to_numpy(k) ** 2)) for k in kernels)
    assert len(regularised.losses) == 3
    assert float(sum(keras.ops.convert_to_numpy(l) for l in regularised.losses)) == \
        pytest.approx(expected, rel=1e-4)
    assert not plain.losses
