"""Every strategy on tiny real data, cached features, fine-tuning phases, the budget protocol."""

import os

import keras
import numpy as np
import pytest

from gantransfer.data import load_dataset
from gantransfer.gan.models import build_discriminator
from gantransfer.config import TransferConfig
from gantransfer.errors import ConfigError
from gantransfer.evaluation.results import StrategyResult
from gantransfer.registry import STRATEGIES
from gantransfer.data.batches import Views
from gantransfer.transfer_learning.classifiers import (apply_view, augmentation,
                                                      augmentation_views, build_classifier,
                                                      build_head)
from gantransfer.transfer_learning.probe import adaptive_max_pool, probe_features
from gantransfer.transfer_learning.protocol import budget_split, run_transfer
from gantransfer.transfer_learning.strategies import (RUNNERS, Split, StrategyContext,
                                                      cached_features)
from gantransfer.transfer_learning import strategies as strategies_module
from gantransfer.transfer_learning.trunks import TrunkArchitecture, build_gan_trunk

STRATEGY_NAMES = tuple(STRATEGIES)

ARCH = TrunkArchitecture(32, 1, width=0.125, kernel_size=3)
FAST = TransferConfig(learning_rates=[1e-2], max_epochs=4, patience=2, batch_size=16,
                        probe_c=[0.1], bn_images=200, backbone_weights="none",
                        backbone_input_size=32, cv_folds=2, semisupervised_steps=4,
                        semisupervised_batch_size=32)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", image_size=32, validation_split=0.0, seed=0)


@pytest.fixture(scope="module")
def split(digits):
    train, val = budget_split(digits.train.y, 5, seed=0, validation_fraction=0.2, num_classes=10)
    pixels = lambda ims, idx: ims.load(idx).astype("float32")
    return Split(x_train=pixels(digits.train, train), y_train=digits.train.y[train],
                 x_val=pixels(digits.train, val), y_val=digits.train.y[val],
                 x_test=pixels(digits.test, np.arange(100)), y_test=digits.test.y[:100],
                 unlabeled=pixels(digits.train, np.arange(300)), num_classes=10, seed=0)


def _context(split, **overrides):
    settings = TransferConfig(**{**FAST.__dict__, **overrides})
    keras.utils.set_random_seed(0)
    return StrategyContext(split=split, settings=settings, architecture=ARCH,
                           discriminator=build_discriminator(32, 1, width=0.125, kernel_size=3))


def test_every_registry_entry_has_exactly_one_runner():
    assert sorted(RUNNERS) == sorted(STRATEGY_NAMES)
    assert len(set(RUNNERS.values())) == len(RUNNERS)


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_each_strategy_trains_and_predicts(name, split):
    outcome = RUNNERS[name](_context(split))
    record = outcome.record
    info = STRATEGIES[name]
    assert outcome.predictions.shape == (100,)
    assert set(np.unique(outcome.predictions)) <= set(range(10))
    assert record["status"] == "ok" and record["train_time_s"] > 0
    assert 0 < record["trainable_params"] <= record["total_params"]
    if info.method == "linear-probe":
        assert record["C"] == 0.1 and record["history"] == {}
    elif info.method == "semisupervised":  # a fixed schedule: a GAN's history, no validation
        assert record["learning_rate"] == 2e-4 and record["epochs"] == 1  # 4 steps of 9 a pass
        assert np.isfinite(record["history"]["supervised_loss"]).all()
        assert record["selection"].startswith("a fixed schedule")
    else:
        assert record["learning_rate"] is not None and record["epochs"] >= 1
        assert len(record["history"]["val_accuracy"]) >= 1
    if info.method == "finetune":
        assert record["phase_kept"] in ("head", "finetune")
    if info.family in ("gan", "random"):
        assert any("BatchNorm statistics of 2 layers re-estimated on 200" in n for n in record["notes"])
    # transfer.head=auto: the head each trunk was pretrained with (probes have none of their own)
    expected = {"imagenet": "gap", "pixels": None}.get(info.family, "flatten")
    assert record["head"] == (None if info.method == "linear-probe" else expected)
    if info.method == "frozen":  # only the head trains
        assert record["trainable_params"] == outcome.model.get_layer("head").count_params()
        assert record["total_params"] > record["trainable_params"]


def test_frozen_trunk_keeps_its_weights(split):
    context = _context(split)
    outcome = RUNNERS["gan-frozen"](context)
    trunk = outcome.model.get_layer("gan_trunk")
    assert not trunk.trainable
    reference = build_gan_trunk(ARCH)
    from gantransfer.transfer_learning.trunks import import_discriminator_weights
    import_discriminator_weights(reference, context.discriminator)
    np.testing.assert_array_equal(trunk.get_layer("block1_conv").kernel.numpy(),
                                  reference.get_layer("block1_conv").kernel.numpy())


def test_scratch_trains_at_its_own_width_and_the_random_control_keeps_the_discriminators(split):
    narrow = RUNNERS["scratch"](_context(split, scratch_width=0.0625))
    same = RUNNERS["scratch"](_context(split))
    control = RUNNERS["random-frozen"](_context(split, scratch_width=0.0625))

    def filters(outcome):
        trunk = outcome.model.get_layer("gan_trunk")
        return [trunk.get_layer(f"block{i}_conv").filters for i in (1, 2, 3)]

    assert filters(narrow) == [4, 8, 16]
    assert filters(same) == filters(control) == [8, 16, 32]  # the discriminator's (ARCH)
    assert ("width 0.0625 (4-8-16 filters), not the discriminator's 0.125 "
            "(transfer.scratch_width)") in narrow.record["notes"]
    assert not any("scratch_width" in note for note in same.record["notes"] + control.record["notes"])
    assert narrow.record["trainable_params"] < same.record["trainable_params"]
    assert narrow.predictions.shape == (100,)


def test_imagenet_heads_try_the_backbone_rates_and_the_other_networks_keep_theirs(split):
    # Each family is offered one rate it cannot mistake for the other's; the record says which
    # rate cross-validation kept.
    rates = dict(learning_rates=[3e-3], backbone_learning_rates=[2e-2])
    backbone = RUNNERS["imagenet-frozen"](_context(split, **rates))
    finetuned = RUNNERS["imagenet-finetune"](_context(split, **rates))
    gan = RUNNERS["gan-frozen"](_context(split, **rates))
    scratch = RUNNERS["scratch"](_context(split, **rates))
    assert backbone.record["learning_rate"] == pytest.approx(2e-2)
    assert finetuned.record["learning_rate"] in (pytest.approx(2e-2), pytest.approx(2e-3))
    assert gan.record["learning_rate"] == scratch.record["learning_rate"] == pytest.approx(3e-3)
    note = "learning rates tried: 0.02 (transfer.backbone_learning_rates)"
    assert note in backbone.record["notes"] and note in finetuned.record["notes"]
    assert not any("backbone_learning_rates" in n for n in gan.record["notes"])
    # Empty (the library default): the ImageNet strategies try learning_rates like the rest.
    default = RUNNERS["imagenet-frozen"](_context(split, learning_rates=[3e-3]))
    assert default.record["learning_rate"] == pytest.approx(3e-3)


def test_cached_feature_head_gives_the_same_predictions_as_the_full_frozen_model(split):
    trunk = build_gan_trunk(ARCH)
    trunk.trainable = False
    f_train, _, f_test = cached_features(trunk, split)
    keras.utils.set_random_seed(0)
    head = build_head(f_train.shape[1:], 10)
    head.compile(keras.optimizers.Adam(1e-2),
                 keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    head.fit(f_train, split.y_train, epochs=3, batch_size=16, verbose=0)
    full = build_classifier(trunk, 10, head=head, trunk_training=False)
    from_cache = head.predict(f_test, verbose=0)
    from_pixels = full.predict(split.x_test, verbose=0)
    np.testing.assert_allclose(from_cache, from_pixels, rtol=1e-4, atol=1e-4)
    assert (np.argmax(from_cache, -1) == np.argmax(from_pixels, -1)).all()


def _has_augmentation(model) -> bool:
    return any(layer.name == "augment" for layer in model.layers)


def test_augmentation_trains_a_frozen_head_on_cached_views_and_beyond_them_on_pixels(
        split, monkeypatch):
    # Shifts of up to a pixel make 9 views of an image: the head trains on the frozen trunk's
    # features of each, computed once, one view of each image per epoch. Validation reads the
    # images as they are.
    fits, trained = _spy_on_fits(monkeypatch)
    outcome = RUNNERS["random-frozen"](_context(split, augment_shift=1 / 32))
    n = len(split.y_train) + len(split.y_val)
    assert any("features of the 9 views of each labeled image that the augmentation makes cached"
               in note for note in outcome.record["notes"]), outcome.record["notes"]
    assert fits and all(isinstance(x, Views) and x.stack.shape[1] == 9 for (x, _), _ in fits)
    assert all(isinstance(v, Views) and len(x) + len(v) == n for (x, _), (v, _) in fits)
    assert trained and all(isinstance(x, Views) and len(x) == n for x, _ in trained)
    assert _has_augmentation(outcome.model)  # as a model trained through the pixels has
    from_pixels = np.argmax(outcome.model.predict(split.x_test, verbose=0), axis=-1)
    np.testing.assert_array_equal(from_pixels, outcome.predictions)
    # More views than the cache holds: the head trains through the pixels, under the augmentation.
    monkeypatch.setattr(strategies_module, "VIEW_CACHE_UP_TO", 9 * n - 1)
    fits.clear()
    pixels = RUNNERS["random-frozen"](_context(split, augment_shift=1 / 32))
    assert not any("cached" in note for note in pixels.record["notes"])
    assert any(note.startswith("the head trained through the pixels") and
               f"would be {9 * n} feature maps" in note for note in pixels.record["notes"])
    assert fits and all(x.shape[1:] == (32, 32, 1) for (x, _), _ in fits)
    assert _has_augmentation(pixels.model)


@pytest.mark.parametrize("flip, shift", [(False, 1 / 32), (False, 0.05), (True, 1 / 32)])
def test_augmentation_views_are_what_the_layer_makes_as_often_as_it_makes_them(flip, shift):
    # 1/32 of 32 pixels: a move of up to one pixel each way, 0 half the time; 0.05: up to 1.6,
    # which rounds to 2 pixels one time in 32 each way.
    views, chances = augmentation_views(flip, shift, 32, 32)
    assert views[0] == (False, 0, 0) and len(set(views)) == len(views)
    assert len(views) == (2 if flip else 1) * (9 if shift == 1 / 32 else 25)
    assert np.isclose(sum(chances), 1.0)
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (1, 32, 32, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    draws = 4000
    made = np.asarray(augmentation(flip, shift)(np.repeat(image, draws, 0), training=True))
    candidates = np.concatenate([apply_view(image, view) for view in views])
    counts = np.zeros(len(views))
    for out in made:
        match = np.flatnonzero((candidates == out).all(axis=(1, 2, 3)))
        assert len(match) == 1, "the layer made an image that is not exactly one view"
        counts[match[0]] += 1
    # each frequency within 4 standard deviations of its chance
    spread = 4 * np.sqrt(np.asarray(chances) * (1 - np.asarray(chances)) / draws)
    assert (np.abs(counts / draws - chances) <= spread + 1e-3).all(), (counts / draws, chances)


def test_shift_augmentation_moves_whole_pixels_and_repeats_the_edge():
    """A shifted light-background image gains no black border and no blur: each output is the
    input moved by whole pixels, its uncovered rows and columns copies of the edge."""
    rng = np.random.default_rng(0)
    images = np.full((32, 12, 12, 1), 255.0, "float32")
    images[:, 2:10, 2:10] = rng.integers(0, 256, (32, 8, 8, 1))
    moved = np.asarray(augmentation(shift=0.25)(images, training=True))
    shifts = set()
    for image, out in zip(images, moved):
        padded = np.pad(image, ((3, 3), (3, 3), (0, 0)), mode="edge")
        matches = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                   if np.array_equal(out, padded[3 - dy:15 - dy, 3 - dx:15 - dx])]
        assert matches, "an augmented image is not a whole-pixel move of its input"
        shifts.add(matches[0])
    assert len(shifts) > 3
    untouched = np.asarray(augmentation(shift=0.25)(images, training=False))
    np.testing.assert_array_equal(untouched, images)


def test_probe_features_pool_every_block_to_four_by_four(split):
    trunk = build_gan_trunk(ARCH)
    features = probe_features(trunk, split.x_test[:3])
    assert features.shape == (3, 16 * (8 + 16 + 32))
    pooled = adaptive_max_pool(np.arange(49, dtype="float32").reshape(1, 7, 7, 1))
    assert pooled[0, :, :, 0].tolist() == [[8, 10, 12, 13], [22, 24, 26, 27], [36, 38, 40, 41],
                                           [43, 45, 47, 48]]


def test_budget_split_is_per_class_and_deterministic():
    y = np.repeat(np.arange(4), 30)
    train, val = budget_split(y, 10, seed=3, validation_fraction=0.2, num_classes=4)
    assert np.bincount(y[train]).tolist() == [8] * 4 and np.bincount(y[val]).tolist() == [2] * 4
    assert not set(train) & set(val)
    again = budget_split(y, 10, seed=3, validation_fraction=0.2, num_classes=4)
    assert (again[0] == train).all() and (again[1] == val).all()
    other = budget_split(y, 10, seed=4, validation_fraction=0.2, num_classes=4)
    assert not (other[0] == train).all()
    all_train, all_val = budget_split(y, "all", seed=0, validation_fraction=0.2, num_classes=4)
    assert len(all_train) + len(all_val) == 120


def test_run_transfer_skips_imagenet_when_weights_cannot_be_had(digits, monkeypatch, tmp_path):
    from gantransfer.transfer_learning import backbones

    def unavailable(*args, **kwargs):
        raise backbones.BackboneWeightsUnavailable("put x.h5 into /somewhere/ and run again")

    monkeypatch.setattr(backbones, "build_backbone", unavailable)
    small = digits.with_label_budget(6, seed=0)
    run = run_transfer(small, ["pixels-linear", "imagenet-frozen", "imagenet-finetune"], [3], 2,
                       FAST, architecture=ARCH, models_dir=tmp_path)
    assert all(isinstance(r, StrategyResult) for r in run.results)
    by_status = {(r.strategy, r.seed): r.status for r in run.results}
    assert by_status[("pixels-linear", 0)] == "ok" and by_status[("pixels-linear", 1)] == "ok"
    assert by_status[("imagenet-frozen", 1)] == "skipped"
    assert by_status[("imagenet-finetune", 0)] == "skipped"
    assert [s["strategy"] for s in run.skipped] == ["imagenet-frozen", "imagenet-finetune"]
    ok = next(r for r in run.results if r.status == "ok")
    assert ok.model_file.endswith("pixels-linear_lpc-3_seed-0.keras")
    # refitted (FAST keeps transfer.refit on): the final model trained on all 30 of its budget
    assert (ok.train_images, ok.val_images) == (30, 10)
    assert ok.C == 0.1 and ok.test_accuracy is not None and len(ok.confusion_matrix) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pixels-linear_lpc-3_seed-0.keras",
                                                          "pixels-linear_lpc-3_seed-1.keras"]


def test_a_probe_too_big_for_memory_at_one_budget_still_runs_at_a_smaller_one(digits,
                                                                             monkeypatch):
    from gantransfer import runs
    from gantransfer.evaluation.linear import probe_memory

    small = digits.with_label_budget(12, seed=0)
    tested = len(small.test)
    # room for the 3-per-class budget's features (40 images with their 4 moved copies), not for
    # the 10-per-class one's; the larger budget comes first
    monkeypatch.setattr(runs, "available_memory",
                        lambda: probe_memory(40 * 5, tested, 1024, "float32") + 1)
    settings = TransferConfig(**{**FAST.__dict__, "probe_solver": "scikit-learn"})
    run = run_transfer(small, ["pixels-linear"], [10, 3], 1, settings, architecture=ARCH)
    assert [(r.labels_per_class, r.status) for r in run.results] == [(10, "skipped"), (3, "ok")]
    assert [s["strategy"] for s in run.skipped] == ["pixels-linear"]
    assert "needs about" in run.results[0].reason


def test_networks_trained_under_augmentation_say_so_and_frozen_heads_name_their_views(digits):
    small = digits.with_label_budget(6, seed=0)
    settings = TransferConfig(**{**FAST.__dict__, "augment_shift": 1 / 32, "cv_folds": 0})
    run = run_transfer(small, ["scratch", "random-frozen", "pixels-linear"], [3], 1, settings,
                       architecture=ARCH)
    notes = {r.strategy: r.notes for r in run.results}
    said = ("trained on its images under random shifts by whole pixels, up to 0.03125 of the side "
            "(1 pixel each way at 32 px) (transfer.augment_shift)")
    assert said in notes["scratch"]
    assert said not in notes["random-frozen"] and said not in notes["pixels-linear"]
    assert any("the 9 views of each labeled image" in n for n in notes["random-frozen"])


def test_gan_strategies_need_a_discriminator(digits):
    from gantransfer.errors import ConfigError

    with pytest.raises(ConfigError, match="gan-frozen need a trained GAN: pass --gan-run"):
        run_transfer(digits, ["gan-frozen"], [5], 1, FAST, architecture=ARCH)


def test_a_gan_from_another_dataset_transfers_with_converted_images(tmp_path):
    """A colour 32x32 GAN's discriminator on grey digits: the target is brought to 3 channels."""
    from gantransfer.config import load_config
    from gantransfer.workflows.experiment import transfer

    config = load_config("digits", ["transfer.strategies=gan-linear-probe,pixels-linear",
                                    "transfer.labels_per_class=3", "transfer.seeds=1",
                                    "transfer.probe_c=0.1", "transfer.bn_images=50",
                                    "data.image_size=64"])
    colour = build_discriminator(32, 3, width=0.125, kernel_size=3)
    result = transfer(config, tmp_path / "run", discriminator=colour, verbose=False)
    assert [r.status for r in result.results] == ["ok", "ok"]
    import json

    context = json.loads((tmp_path / "run/results.json").read_text())["context"]
    assert any("brought to the GAN's 32x32x3 (the config asked for 64 px, channels 1)" in note
               for note in context["notes"])
    assert not (tmp_path / "run/results.partial.json").exists()


@pytest.mark.parametrize("kind, with_trunk, size, solver", [
    ("logistic", True, 32, "scikit-learn"), ("svm", True, 28, "scikit-learn"),
    ("logistic", False, 32, "scikit-learn"), ("logistic", True, 32, "keras")])
def test_linear_probe_exports_to_keras_with_the_same_predictions(split, tmp_path, kind, with_trunk,
                                                                 size, solver):
    from gantransfer.transfer_learning.probe import fit_probe, pixel_features, probe_as_keras

    images = split.x_train if size == 32 else split.x_train[:, 2:30, 2:30]
    tests = split.x_test if size == 32 else split.x_test[:, 2:30, 2:30]
    trunk = build_gan_trunk(TrunkArchitecture(size, 1, width=0.125, kernel_size=3)) \
        if with_trunk else None
    features = (lambda x: probe_features(trunk, x)) if with_trunk else pixel_features
    probe = fit_probe((features(images), split.y_train), (features(tests), split.y_test),
                      kind=kind, Cs=[0.1], solver=solver).model
    assert type(probe[-1]).__name__ == ("KerasLogisticRegression" if solver == "keras" else
                                        "LogisticRegression" if kind == "logistic" else "LinearSVC")
    model = probe_as_keras(probe, images.shape[1:], 10, trunk)
    model.save(tmp_path / "probe.keras")
    loaded = keras.saving.load_model(tmp_path / "probe.keras")
    expected = probe.predict(features(tests))
    assert (np.argmax(loaded.predict(tests, verbose=0), -1) == expected).all()
    np.testing.assert_allclose(loaded.predict(tests, verbose=0), probe.decision_function(
        features(tests)), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("rate, max_epochs, patience", [(0.3, 12, 3), (0.1, 4, 15), (0.3, 4, 15)])
def test_the_selection_score_is_the_score_of_the_weights_kept(rate, max_epochs, patience):
    # A linear head at a high learning rate oscillates: its best validation epoch is often an early
    # one, inside EarlyStopping's warm-up, whose weights that callback never restores.
    from gantransfer.transfer_learning.classifiers import build_head, fit_selected

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 16)).astype("float32")
    y = (x[:, :3].argmax(axis=1) + (rng.random(120) < 0.3)) % 3  # a linear rule, 30% label noise
    kept_earlier = 0
    for seed in range(3):
        outcome = fit_selected(lambda: build_head((16,), 3), (x[:80], y[:80]), (x[80:], y[80:]),
                               learning_rates=[rate], max_epochs=max_epochs, patience=patience,
                               batch_size=8, seed=seed)
        loss, accuracy = outcome.model.evaluate(x[80:], y[80:], verbose=0)
        assert accuracy == pytest.approx(outcome.val_accuracy, abs=1e-6)
        assert loss == pytest.approx(outcome.val_loss, rel=1e-4)
        assert outcome.best_epoch == int(np.argmax(
            np.array(outcome.history["val_accuracy"]) - 1e-3 * np.array(outcome.history["val_loss"]))) + 1
        kept_earlier += outcome.best_epoch < outcome.epochs
    assert kept_earlier  # some fit kept an earlier epoch's weights: the restoring was exercised


@pytest.mark.parametrize("name", ["scratch", "gan-finetune", "pixels-linear"])
def test_test_labels_cannot_affect_any_choice(name, split):
    # Every choice (learning rate or C, epochs, phase, the model itself) is made on the budget's
    # validation images: scrambling the test labels changes the score and nothing else.
    import dataclasses

    first = RUNNERS[name](_context(split))
    scrambled = dataclasses.replace(split, y_test=np.random.default_rng(0).permutation(split.y_test))
    second = RUNNERS[name](_context(scrambled))
    np.testing.assert_array_equal(first.predictions, second.predictions)
    for key in ("learning_rate", "C", "epochs", "phase_kept", "history"):
        assert first.record[key] == second.record[key], key


# Heads, refit and cross-validation

def test_auto_head_is_the_one_each_trunk_was_pretrained_with(split, tmp_path):
    from gantransfer.transfer_learning.strategies import GAN_ARCHITECTURE_HEAD, IMAGENET_HEAD

    assert (GAN_ARCHITECTURE_HEAD, IMAGENET_HEAD) == ("flatten", "gap")
    # (each strategy's auto head is checked in test_each_strategy_trains_and_predicts)
    forced = RUNNERS["imagenet-frozen"](_context(split, head="flatten"))
    assert forced.record["head"] == "flatten"
    assert forced.model.get_layer("head").get_layer("head_flatten") is not None


@pytest.mark.parametrize("kind, features", [("gap", 32), ("flatten", 4 * 4 * 32),
                                            ("pooled", 16 * (8 + 16 + 32))])
def test_each_head_reads_the_trunk_its_own_way_and_saves(split, tmp_path, kind, features):
    outcome = RUNNERS["gan-frozen"](_context(split, head=kind))
    head = outcome.model.get_layer("head")
    assert outcome.record["head"] == kind
    assert head.get_layer("head_dense").kernel.shape == (features, 10)
    outcome.model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(split.x_test, verbose=0),
                               outcome.model.predict(split.x_test, verbose=0), atol=1e-5)
    assert (np.argmax(loaded.predict(split.x_test, verbose=0), -1) == outcome.predictions).all()


def _rows(x):
    """Each image of ``x`` as bytes: a multiset of images to compare."""
    return sorted(np.ascontiguousarray(image).tobytes() for image in np.asarray(x, "float32"))


@pytest.mark.parametrize("name, cv_folds, ensemble", [
    ("scratch", 5, 1), ("gan-frozen", 0, 1), ("gan-frozen", 5, 1), ("gan-finetune", 5, 1),
    ("scratch", 5, 3), ("gan-frozen", 0, 2), ("gan-finetune", 5, 2), ("gan-finetune", 0, 2)])
def test_the_refit_trains_on_exactly_the_budgets_images(split, monkeypatch, name, cv_folds,
                                                        ensemble):
    from gantransfer.transfer_learning import classifiers, strategies

    seen = []
    real_train_for = classifiers._train_for

    def spy(model, data, **kwargs):  # every refit trains through here
        seen.append(data)
        return real_train_for(model, data, **kwargs)

    monkeypatch.setattr(classifiers, "_train_for", spy)
    # moved copies: tested below
    context = _context(split, cv_folds=cv_folds, probe_shift=0, ensemble=ensemble)
    outcome = RUNNERS[name](context)
    budget = np.concatenate([split.x_train, split.x_val])
    labels = np.concatenate([split.y_train, split.y_val])
    refits = [(x, y) for x, y in seen if len(x) == len(budget)]
    assert len(refits) >= ensemble, "a member was not refitted"
    features = None
    for x, y in seen:
        if x.shape[1:] == budget.shape[1:]:
            rows = _rows(budget)
        else:  # cached features: the features of the budget's images, before any tuning
            if features is None:
                trunk = strategies._prepared_trunk(context, True, [])
                features = trunk.predict(budget, verbose=0)
            rows = _rows(features)
        if len(x) == len(budget):  # a refit: exactly the budget's images, every label once
            assert sorted(y.tolist()) == sorted(labels.tolist())
            assert _rows(x) == rows
        else:  # a fold's training part (the fine-tuning strategy's head in each fold): within it
            assert set(_rows(x)) <= set(rows) and len(x) < len(budget)
    assert "refit" in outcome.record["selection"]
    if name == "scratch":  # without refit, nothing is trained again
        seen.clear()
        off = RUNNERS[name](_context(split, refit=False, cv_folds=cv_folds))
        assert off.record["selection"] == "validation split" and not seen


def test_cross_validation_never_sees_test_images(split, monkeypatch):
    import dataclasses

    from gantransfer.transfer_learning import classifiers, probe

    # Test images that no budget image can equal: every pixel 255.
    marked = dataclasses.replace(split, x_test=np.full_like(split.x_test, 255.0))
    seen: list[np.ndarray] = []
    searched: list[np.ndarray] = []
    real_fit, real_probe_fit = classifiers._fit_until_best, probe.fit_quietly

    def fit_spy(model, train, val, **kwargs):
        seen.extend([train[0], val[0]])
        return real_fit(model, train, val, **kwargs)

    def probe_fit_spy(estimator, x, y):
        searched.append(x)
        return real_probe_fit(estimator, x, y)

    monkeypatch.setattr(classifiers, "_fit_until_best", fit_spy)
    monkeypatch.setattr(probe, "fit_quietly", probe_fit_spy)
    frozen = RUNNERS["random-frozen"](_context(marked, cv_folds=3))
    pixels = RUNNERS["pixels-linear"](_context(marked, cv_folds=3, probe_c=[0.01, 0.1]))
    assert "3-fold cross-validation" in frozen.record["selection"]
    assert "3-fold cross-validation" in pixels.record["selection"]
    assert len(seen) == 2 * 3  # three folds' train and validation parts
    # three folds per C tried, then the refit: the budget's images (and their moved copies) only
    assert len(searched) >= 2 * 3 + 1
    assert all(len(x) <= 5 * (len(split.x_train) + len(split.x_val)) for x in searched)
    seen += searched
    trunk = frozen.model.get_layer("gan_trunk")
    test_features = {f.tobytes() for f in trunk.predict(marked.x_test[:5], verbose=0)
                     .reshape(5, -1)}
    test_pixels = {f.tobytes() for f in (marked.x_test[:5] / 255.0).reshape(5, -1)}
    for x in seen:
        rows = {row.tobytes() for row in np.asarray(x).reshape(len(x), -1)}
        assert not rows & (test_features | test_pixels)
    # a fold trains on its images and their 4 moved copies, and validates on the others
    assert len(seen[0]) // 5 + len(seen[1]) == len(split.x_train) + len(split.x_val)
    # Networks trained through pixels choose by cross-validation too (fine-tuning also judges
    # its phase there): their folds hold budget images only.
    seen.clear()
    for name in ("scratch", "gan-finetune"):
        outcome = RUNNERS[name](_context(marked, cv_folds=3))
        assert "3-fold cross-validation" in outcome.record["selection"], name
    # scratch: one rate x 3 folds; fine-tuning: the head's 3 folds, then fine-tuning's 3
    assert len(seen) == 2 * (3 + 3 + 3)
    for x in seen:
        if x.shape[1:] == marked.x_test.shape[1:]:
            rows = {row.tobytes() for row in np.asarray(x)}
            assert not rows & {row.tobytes() for row in marked.x_test[:5]}


def test_fold_indices_are_stratified_and_cover_the_budget_once():
    from gantransfer.transfer_learning.probe import fold_indices

    y = np.repeat(np.arange(3), [4, 6, 8])
    pairs = fold_indices(y, folds=5, seed=1)
    assert len(pairs) == 4  # capped at the smallest class
    validated = np.concatenate([val for _, val in pairs])
    assert sorted(validated.tolist()) == list(range(len(y)))
    for train, val in pairs:
        assert not set(train) & set(val)
        assert set(y[val]) == {0, 1, 2}


@pytest.mark.parametrize("refit", [True, False])
def test_a_probe_whose_c_a_validation_split_chose_is_refitted_on_the_whole_budget(split,
                                                                                monkeypatch, refit):
    from gantransfer.transfer_learning import probe

    fitted = []
    real_fit = probe.fit_quietly

    def spy(model, x, y):
        fitted.append(len(x))
        return real_fit(model, x, y)

    monkeypatch.setattr(probe, "fit_quietly", spy)
    outcome = RUNNERS["gan-linear-probe"](_context(split, cv_folds=0, refit=refit, probe_shift=0))
    budget = len(split.x_train) + len(split.x_val)
    assert fitted[-1] == (budget if refit else len(split.x_train))  # the probe that is kept
    assert set(fitted[:-1] if refit else fitted) == {len(split.x_train)}  # C chosen: train only
    assert outcome.record["selection"] == ("validation split, then a refit on all of the budget"
                                           if refit else "validation split")


@pytest.mark.parametrize("name", ["scratch", "gan-finetune"])
def test_a_refit_that_fits_the_budget_worse_is_discarded(split, monkeypatch, name):
    from gantransfer.transfer_learning import strategies

    # The guard belongs to choices made on the validation split (cv_folds=0); cross-validation
    # chooses the epochs over every fold, and its refit is what it keeps.
    kept = RUNNERS[name](_context(split, refit=False, cv_folds=0))
    # A refit that learned nothing (a learning rate of ~0) fits the budget worse than the
    # validated model scored on its validation images: the validated model must come back.
    real_refit = strategies.refit

    def broken(build, data, **kwargs):
        return real_refit(build, data, **{**kwargs, "learning_rate": 1e-12})

    monkeypatch.setattr(strategies, "refit", broken)
    outcome = RUNNERS[name](_context(split, cv_folds=0))
    assert outcome.record["selection"] == "validation split (its refit was discarded)"
    assert any("so the validated model is kept" in note for note in outcome.record["notes"])
    np.testing.assert_array_equal(outcome.predictions, kept.predictions)
    np.testing.assert_array_equal(np.argmax(outcome.model.predict(split.x_test, verbose=0), -1),
                                  kept.predictions)


def test_the_papers_probe_is_an_svm_on_raw_features_with_the_papers_grid(split, tmp_path):
    from gantransfer.evaluation.linear import PAPER_CS
    from sklearn.svm import LinearSVC

    outcome = RUNNERS["gan-linear-probe"](_context(split, probe="paper", probe_c=[5.0]))
    assert outcome.record["C"] in PAPER_CS  # its own grid: transfer.probe_c is not used
    model = outcome.model
    standardise = model.get_layer("standardise")
    assert np.allclose(keras.ops.convert_to_numpy(standardise.mean), 0)
    assert np.allclose(keras.ops.convert_to_numpy(standardise.variance), 1)
    # The saved model predicts what an L2-SVM on the raw pooled features predicts.
    from gantransfer.transfer_learning.strategies import _prepared_trunk

    prepared = _prepared_trunk(_context(split, probe="paper"), True, [])
    features = probe_features(prepared, np.concatenate([split.x_train, split.x_val]))
    labels = np.concatenate([split.y_train, split.y_val])
    svm = LinearSVC(C=outcome.record["C"], max_iter=5000, random_state=0).fit(features, labels)
    expected = svm.predict(probe_features(prepared, split.x_test))
    np.testing.assert_array_equal(outcome.predictions, expected)
    np.testing.assert_array_equal(np.argmax(model.predict(split.x_test, verbose=0), -1), expected)


def test_one_model_restarted_per_rate_keeps_the_best_rates_weights():
    # fit_selected trains one compiled model again for each rate; the model it returns must hold
    # the winning rate's best weights, not the last rate's.
    from gantransfer.transfer_learning.classifiers import build_head, fit_selected

    rng = np.random.default_rng(1)
    x = rng.normal(size=(90, 8)).astype("float32")
    y = x[:, :3].argmax(axis=1)
    rates = [0.05, 1e-6]  # the second rate learns nothing: if its weights stayed, accuracy drops
    outcome = fit_selected(lambda: build_head((8,), 3), (x[:60], y[:60]), (x[60:], y[60:]),
                           learning_rates=rates, max_epochs=8, patience=2, batch_size=8, seed=0)
    assert outcome.learning_rate == 0.05
    _, accuracy = outcome.model.evaluate(x[60:], y[60:], verbose=0)
    assert accuracy == pytest.approx(outcome.val_accuracy, abs=1e-6)
    assert outcome.val_accuracy > 0.6
    restarted = outcome.restart(0.05)  # back at its start: the same model, initial weights
    assert restarted is outcome.model
    assert float(keras.ops.convert_to_numpy(restarted.optimizer.iterations)) == 0


def test_a_cross_validated_finetuning_refit_that_fits_worse_than_its_folds_is_discarded(split,
                                                                                        monkeypatch):
    from gantransfer.transfer_learning import classifiers

    # Fine-tuning is made to win over the folds; its refit on every image is then broken (the
    # trunk's kernels zeroed, as a bad last epoch could leave it): the head-only model must be
    # what comes back, saying why.
    real_fit, real_train = classifiers._fit_until_best, classifiers._train_for

    def winning(model, train, *args, **kwargs):
        run = real_fit(model, train, *args, **kwargs)
        if train[0].shape[1:3] == (32, 32):  # a fold's fine-tuning, not a head on features
            run.val_accuracy, run.val_loss = 1.0, 0.0
        return run

    def broken(model, data, **kwargs):
        trained = real_train(model, data, **kwargs)
        if data[0].shape[1:3] == (32, 32):  # the refit on pixels, not a head on features
            for weight in trained.weights:
                if "conv" in weight.path and "kernel" in weight.path:
                    weight.assign(np.zeros(weight.shape, "float32"))
        return trained

    monkeypatch.setattr(classifiers, "_fit_until_best", winning)
    monkeypatch.setattr(classifiers, "_train_for", broken)
    outcome = RUNNERS["gan-finetune"](_context(split, cv_folds=2))
    assert outcome.record["phase_kept"] == "head"
    assert any("but its refit on all labels fit them worse" in note
               for note in outcome.record["notes"])
    accuracy = np.mean(np.argmax(outcome.model.predict(split.x_test, verbose=0), -1) == split.y_test)
    assert accuracy > 0.3  # the head on the pretrained trunk, not the zeroed one


@pytest.mark.parametrize("fit, kept", [(0.95, "finetune"), (0.85, "head")])
def test_a_finetuning_refit_is_judged_against_its_folds_not_a_perfect_fit(split, monkeypatch,
                                                                         fit, kept):
    from gantransfer.transfer_learning import classifiers

    # With a few labels the head alone fits its own images perfectly. A fine-tuned refit that fits
    # 95% of them, above the 90% the folds' fine-tuning scored on images it had not trained on,
    # ended training soundly and is kept; at 85%, below that, it ended on a bad epoch.
    real_fit = classifiers._fit_until_best

    def scored(model, train, *args, **kwargs):
        run = real_fit(model, train, *args, **kwargs)
        finetuning = train[0].shape[1:3] == (32, 32)  # a fold's fine-tuning on pixels
        run.val_accuracy, run.val_loss = (0.9 if finetuning else 0.5), 0.0
        return run

    monkeypatch.setattr(classifiers, "_fit_until_best", scored)
    monkeypatch.setattr(classifiers, "budget_accuracy", lambda model, x, y: fit)
    outcome = RUNNERS["gan-finetune"](_context(split, cv_folds=2))
    assert outcome.record["phase_kept"] == kept
    discarded = [n for n in outcome.record["notes"] if "but its refit on all labels" in n]
    if kept == "head":
        assert discarded == ["fine-tuning's mean fold validation accuracy, 90.0%, beat the head's, "
                             "50.0%, but its refit on all labels fit them worse (85.0%) than the "
                             "folds scored on images they had not trained on (90.0%), so the "
                             "head-only model is kept"]
    else:
        assert not discarded


def test_a_probe_choice_at_the_end_of_its_grid_is_extended_and_noted_in_the_record(split):
    # Two values far apart: whichever wins lies at an end, so the grid grows and the record says so.
    outcome = RUNNERS["pixels-linear"](_context(split, probe_c=[1e-6, 1e3], refit=False))
    notes = [n for n in outcome.record["notes"] if n.startswith("C at the")]
    assert len(notes) == 1 and "end of its grid" in notes[0], outcome.record["notes"]
    assert outcome.record["C"] not in (1e-6, 1e3) or "no better" in notes[0]


@pytest.mark.parametrize("name", ["gan-linear-probe", "pixels-linear"])
def test_a_probe_that_would_not_fit_in_memory_is_refused_before_its_features(split, monkeypatch,
                                                                              name):
    from gantransfer import runs
    from gantransfer.transfer_learning.strategies import StrategySkipped

    monkeypatch.setattr(runs, "available_memory", lambda: 2**10)  # 1 KiB free
    extracted = []
    monkeypatch.setattr("gantransfer.transfer_learning.strategies.probe_features",
                        lambda *args, **kwargs: extracted.append(1))
    with pytest.raises(StrategySkipped) as refused:
        RUNNERS[name](_context(split, probe_shift=0))
    message = str(refused.value)
    width = 1024 if name == "pixels-linear" else 896
    # float32 would not fit, so float16, its smallest storage, is what the message sizes
    assert f"the linear probe on {len(split.x_train) + len(split.x_val) + 100} images x {width} " \
           "features stored as float16 (its smallest storage) needs about" in message
    assert "iB of memory and this machine has 1.0 KiB available; lower transfer.labels_per_class" \
        in message
    assert not extracted


def test_probe_features_are_the_pooled_width_and_filled_in_place(split):
    from gantransfer.gan.features import probe_width

    trunk = build_discriminator(32, 1, width=0.125, kernel_size=3)
    features = probe_features(trunk, split.x_train[:5] / 127.5 - 1, batch_size=2)
    assert features.shape == (5, probe_width(trunk)) and features.dtype == np.float32
    one_by_one = np.concatenate([probe_features(trunk, split.x_train[i:i + 1] / 127.5 - 1)
                                 for i in range(5)])
    np.testing.assert_allclose(features, one_by_one, rtol=1e-5, atol=1e-6)
    half = probe_features(trunk, split.x_train[:5] / 127.5 - 1, batch_size=2, dtype="float16")
    assert half.dtype == np.float16
    np.testing.assert_allclose(half, features, rtol=1e-3, atol=1e-3)  # float16's rounding only


def test_a_probe_solved_by_keras_says_so_and_scores_like_scikit_learns(split, monkeypatch):
    from gantransfer.transfer_learning import probe

    exact = RUNNERS["pixels-linear"](_context(split, probe_c=[0.1], refit=False))
    # the held-out fold and the subset rules, at this budget's size
    monkeypatch.setattr(probe, "HELD_OUT_FROM_IMAGES", 10)
    keras_fit = RUNNERS["pixels-linear"](_context(split, probe_c=[0.1], probe_solver="keras"))
    notes = " ".join(keras_fit.record["notes"])
    assert "solved by Keras (Adam on mini-batches, scikit-learn's objective)" in notes
    assert "held-out images of the budget (one stratified fold of 2" in keras_fit.record["selection"]
    assert "solved by Keras" not in " ".join(exact.record["notes"])
    agree = np.mean(np.asarray(keras_fit.predictions) == np.asarray(exact.predictions))
    assert agree >= 0.8, agree


def test_a_probe_whose_float32_features_would_not_fit_stores_them_as_float16(split, monkeypatch):
    from gantransfer import runs
    from gantransfer.evaluation.linear import probe_memory

    fitted, tested = len(split.x_train) + len(split.x_val), len(split.x_test)
    in_float32 = RUNNERS["pixels-linear"](_context(split, probe_c=[0.1], probe_shift=0))
    # room for float16 features, not for float32 ones
    monkeypatch.setattr(runs, "available_memory",
                        lambda: probe_memory(fitted, tested, 1024, "float16") + 1)
    seen = []
    real = strategies_module.pixel_features
    monkeypatch.setattr(strategies_module, "pixel_features",
                        lambda x, dtype: seen.append(dtype) or real(x, dtype))
    in_float16 = RUNNERS["pixels-linear"](_context(split, probe_c=[0.1], probe_shift=0))
    assert set(seen) == {"float16"}
    notes = " ".join(in_float16.record["notes"])
    assert "features stored as float16 (float32 features would not fit in available memory)" in notes
    assert "solved by Keras" in notes  # the solver that reads float16 without a float32 copy
    agree = np.mean(np.asarray(in_float16.predictions) == np.asarray(in_float32.predictions))
    assert agree >= 0.8, agree
    # an SVM probe cannot use float16: it is refused, and the message says what float16 needs
    from gantransfer.transfer_learning.strategies import StrategySkipped
    with pytest.raises(StrategySkipped, match="stored as float32 needs about .*float16 features "
                       r"\(half the memory\) need transfer.probe=logistic"):
        RUNNERS["pixels-linear"](_context(split, probe="svm", probe_shift=0))


def test_float16_probe_storage_needs_the_keras_solver():
    with pytest.raises(ConfigError, match="transfer.probe_storage=float16 needs transfer.probe="
                       "logistic and transfer.probe_solver auto or keras"):
        TransferConfig(probe_storage="float16", probe_solver="scikit-learn")
    with pytest.raises(ConfigError, match="transfer.probe_storage: received 'int8'"):
        TransferConfig(probe_storage="int8")
    assert TransferConfig(probe_storage="float16").probe_storage == "float16"
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigError, match="transfer.probe_shift: received"):
            TransferConfig(probe_shift=bad)


@pytest.mark.parametrize("shift", [1, 2])
def test_probe_shifts_train_on_moved_copies_that_no_fold_validates_on(split, monkeypatch, shift):
    from gantransfer.transfer_learning import probe

    fits, scored = [], []
    fit = probe.fit_quietly
    monkeypatch.setattr(probe, "fit_quietly", lambda model, x, y: fits.append(x) or fit(model, x, y))
    real_make = probe.make_probe

    def spying_make(*args, **kwargs):
        model = real_make(*args, **kwargs)
        predict = model.predict
        model.predict = lambda x: scored.append(x) or predict(x)
        return model

    monkeypatch.setattr(probe, "make_probe", spying_make)
    outcome = RUNNERS["pixels-linear"](_context(split, probe_c=[0.1], probe_shift=shift))
    budget = np.concatenate([split.x_train, split.x_val]).reshape(len(split.y_train) +
                                                                  len(split.y_val), -1) / 255
    n, rows = len(budget), 1 + 4 * shift  # each image, and its copies: 4 ways, 1 to shift pixels
    assert len(fits[-1]) == rows * n  # the final fit: every labeled image and its moved copies
    np.testing.assert_allclose(fits[-1][:n], budget, atol=1e-6)
    images = budget.reshape(n, 32, 32)
    moved = fits[-1][n:2 * n].reshape(n, 32, 32)  # the first copy: one pixel down
    np.testing.assert_allclose(moved[:, 1:], images[:, :-1], atol=1e-6)
    farthest = fits[-1][(rows - 4) * n:(rows - 3) * n].reshape(n, 32, 32)  # shift pixels down
    np.testing.assert_allclose(farthest[:, shift:], images[:, :-shift], atol=1e-6)
    np.testing.assert_allclose(farthest[:, :shift], images[:, :1].repeat(shift, 1), atol=1e-6)
    for trained, validated in zip(fits[:-1], scored):
        # no validation image of a fold, nor its moved copy, among that fold's training rows
        assert len(trained) % rows == 0 and len(trained) // rows + len(validated) == n
        as_rows = {row.tobytes() for row in np.asarray(trained, "float32")}
        assert not any(row.tobytes() in as_rows for row in np.asarray(validated, "float32"))
    said = {1: "4 copies of each labeled image moved 1 pixel down",
            2: "8 copies of each labeled image moved 1 and 2 pixels down"}[shift]
    assert any(said in note for note in outcome.record["notes"])
    off = RUNNERS["pixels-linear"](_context(split, probe_c=[0.1], probe_shift=0))
    assert not any("copies" in n for n in off.record["notes"])


def _spy_on_fits(monkeypatch) -> tuple[list, list]:
    """Records every validated fit's ``(train, val)`` and every fixed-epoch fit's data."""
    from gantransfer.transfer_learning import classifiers

    fits, trained = [], []
    until_best, train_for = classifiers._fit_until_best, classifiers._train_for
    monkeypatch.setattr(classifiers, "_fit_until_best", lambda model, train, val, **kw: fits.append(
        (train, val)) or until_best(model, train, val, **kw))
    monkeypatch.setattr(classifiers, "_train_for", lambda model, data, **kw: trained.append(
        data) or train_for(model, data, **kw))
    return fits, trained


def _assert_each_image_and_4_copies_none_validated(x, x_val, n):
    """``x`` holds each of its images and 4 moved copies; with ``x_val`` they are all ``n``
    labeled images, and no validation image, nor a copy of it, is among the training rows."""
    assert len(x) % 5 == 0 and len(x) // 5 + len(x_val) == n
    rows = {row.tobytes() for row in np.asarray(x, "float32").reshape(len(x), -1)}
    assert not any(row.tobytes() in rows
                   for row in np.asarray(x_val, "float32").reshape(len(x_val), -1))


@pytest.mark.parametrize("cv_folds", [2, 0])
def test_a_frozen_head_trains_on_moved_copies_that_no_fold_validates_on(split, monkeypatch,
                                                                         cv_folds):
    fits, refits = _spy_on_fits(monkeypatch)
    real_refit = strategies_module.refit  # the validation split's refit
    monkeypatch.setattr(strategies_module, "refit", lambda build, data, **kw: refits.append(
        data) or real_refit(build, data, **kw))
    outcome = RUNNERS["random-frozen"](_context(split, cv_folds=cv_folds, probe_shift=1))
    n = len(split.y_train) + len(split.y_val)
    assert fits and len(refits[-1][0]) == 5 * n  # the refit: every labeled image and 4 copies
    for (x, y), (x_val, y_val) in fits:
        _assert_each_image_and_4_copies_none_validated(x, x_val, n)
        assert sorted(y[:len(x) // 5].tolist() * 5) == sorted(y.tolist())
    assert any("the head also trained on 4 copies of each labeled image moved 1 pixel" in note
               for note in outcome.record["notes"])
    fits.clear()
    off = RUNNERS["random-frozen"](_context(split, cv_folds=cv_folds, probe_shift=0))
    assert not any("copies" in note for note in off.record["notes"])
    assert all(len(x) + len(x_val) == n for (x, _), (x_val, _) in fits)


@pytest.mark.parametrize("cv_folds", [2, 0])
def test_the_fine_tuning_head_phase_trains_on_moved_copies_and_fine_tuning_on_images(
        split, monkeypatch, cv_folds):
    # The head phase reads cached features, as a frozen head does, so it gets the same moved
    # copies; fine-tuning trains through the pixels on the images alone (augment_shift is its
    # augmentation), and nothing validates on a copy of an image its fit trained on.
    fits, trained = _spy_on_fits(monkeypatch)
    outcome = RUNNERS["gan-finetune"](_context(split, cv_folds=cv_folds, probe_shift=1))
    n = len(split.y_train) + len(split.y_val)
    pixels = lambda x: x.shape[1:3] == (32, 32)  # else the trunk's 4x4 map: cached features
    heads = [(x, v) for (x, _), (v, _) in fits if not pixels(x)]
    tunes = [(x, v) for (x, _), (v, _) in fits if pixels(x)]
    fits_per_phase = 2 if cv_folds else 1  # a fit per fold, or on the validation split
    assert len(heads) == fits_per_phase and len(tunes) == fits_per_phase
    for x, x_val in heads:
        _assert_each_image_and_4_copies_none_validated(x, x_val, n)
    for x, x_val in tunes:
        assert len(x) + len(x_val) == n  # fine-tuning: the fold's images, no copies
    head_fits = [x for x, _ in trained if not pixels(x)]
    assert head_fits and all(len(x) % 5 == 0 for x in head_fits)  # fold heads and the refit
    assert len(head_fits[0]) == 5 * n  # the head's refit on every image and its copies
    assert all(len(x) <= n for x, _ in trained if pixels(x))
    assert any("the head phase also trained on 4 copies of each labeled image moved 1 pixel" in note
               for note in outcome.record["notes"])
    fits.clear()
    off = RUNNERS["gan-finetune"](_context(split, cv_folds=cv_folds, probe_shift=0))
    assert not any("copies" in note for note in off.record["notes"])
    assert all(len(x) + len(v) == n for (x, _), (v, _) in fits)


@pytest.mark.parametrize("cv_folds", [2, 0])
def test_with_augmentation_the_head_phase_trains_on_views_and_fine_tuning_under_it(
        split, monkeypatch, cv_folds):
    from gantransfer.transfer_learning import classifiers

    calls = []
    until_best, train_for = classifiers._fit_until_best, classifiers._train_for
    monkeypatch.setattr(classifiers, "_fit_until_best", lambda model, train, val, **kw: calls.append(
        (train[0], _has_augmentation(model))) or until_best(model, train, val, **kw))
    monkeypatch.setattr(classifiers, "_train_for", lambda model, data, **kw: calls.append(
        (data[0], _has_augmentation(model))) or train_for(model, data, **kw))
    outcome = RUNNERS["gan-finetune"](_context(split, cv_folds=cv_folds, augment_shift=1 / 32,
                                               learning_rates=[1e-2, 1e-3]))
    heads = [x for x, _ in calls if isinstance(x, Views)]
    tunes = [augmented for x, augmented in calls if not isinstance(x, Views)]
    assert heads and all(x.stack.shape[1] == 9 for x in heads)
    assert tunes and all(tunes)  # fine-tuning trains through the pixels, under the augmentation
    assert all(x.shape[1:] == (32, 32, 1) for x, _ in calls if not isinstance(x, Views))
    assert any("the head phase trained on one view of each image every epoch" in note
               for note in outcome.record["notes"]), outcome.record["notes"]
    assert _has_augmentation(outcome.model)
    from_pixels = np.argmax(outcome.model.predict(split.x_test, verbose=0), axis=-1)
    np.testing.assert_array_equal(from_pixels, outcome.predictions)


@pytest.mark.parametrize("through", ["augmentation", "adversarial training"])
def test_fine_tuning_through_the_pixels_chooses_by_cross_validation_too(split, monkeypatch,
                                                                         through):
    from gantransfer.transfer_learning import classifiers

    # Adversarial training, or augmentation with more views than the cache holds, put the head
    # phase on the pixels: the head trains through the frozen trunk in every fold (the trunk's
    # weights untouched), then everything fine-tunes. Every choice is cross-validated, as without
    # them.
    monkeypatch.setattr(strategies_module, "VIEW_CACHE_UP_TO", 0)
    calls = []
    until_best, train_for = classifiers._fit_until_best, classifiers._train_for

    def watched(real):
        def spy(model, data, *args, **kwargs):
            trunk = model.get_layer("gan_trunk")
            before = trunk.get_layer("block1_conv").kernel.numpy().copy()
            trained = real(model, data, *args, **kwargs)
            changed = not np.array_equal(before, trunk.get_layer("block1_conv").kernel.numpy())
            calls.append((data[0].shape[1:], trunk.trainable, changed))
            return trained
        return spy

    monkeypatch.setattr(classifiers, "_fit_until_best", watched(until_best))
    monkeypatch.setattr(classifiers, "_train_for", watched(train_for))
    overrides = ({"augment_shift": 0.1} if through == "augmentation" else
                 {"adversarial_training": "fgsm", "adversarial_epsilon": 0.1})
    outcome = RUNNERS["gan-finetune"](_context(split, cv_folds=2, learning_rates=[1e-2, 1e-3],
                                               **overrides))
    record = outcome.record
    assert record["selection"].startswith("2-fold cross-validation over the budget")
    assert not any("cached" in note for note in record["notes"])
    assert any("fine-tuning's mean fold validation accuracy" in note for note in record["notes"])
    assert all(shape == (32, 32, 1) for shape, _, _ in calls)  # pixels, never cached features
    head_phase = [changed for _, trainable, changed in calls if not trainable]
    fine_tuning = [changed for _, trainable, changed in calls if trainable]
    # the head's 2 rates x 2 folds and its refit, then each fold's head again
    assert len(head_phase) == 2 * 2 + 1 + 2 and not any(head_phase)
    assert len(fine_tuning) >= 2 and all(fine_tuning)  # each fold's fine-tuning moves the trunk
    if through == "augmentation":
        assert outcome.model.get_layer("augment") is not None
    else:
        assert type(outcome.model).__name__ == "AdversariallyTrained"
    accuracy = np.mean(outcome.predictions == split.y_test)
    assert accuracy > 0.2


def test_an_ensemble_predicts_the_mean_softmax_of_members_that_differ():
    from gantransfer.transfer_learning.classifiers import LogMeanSoftmax, mean_of

    members = []
    for seed in (0, 1, 2):
        keras.utils.set_random_seed(seed)
        members.append(build_classifier(build_gan_trunk(ARCH), 10))
    x = np.random.default_rng(0).uniform(0, 255, (5, 32, 32, 1)).astype("float32")
    logits = [m.predict(x, verbose=0) for m in members]
    assert not np.allclose(logits[0], logits[1])  # each member from its own initialisation
    softmax = [np.exp(z - z.max(1, keepdims=True)) for z in logits]
    expected = np.mean([p / p.sum(1, keepdims=True) for p in softmax], axis=0)
    ensemble = mean_of(members)
    np.testing.assert_allclose(np.exp(ensemble.predict(x, verbose=0)), expected, rtol=1e-4,
                               atol=1e-6)
    assert sum(isinstance(layer, LogMeanSoftmax) for layer in ensemble.layers) == 1
    assert mean_of(members[:1]) is members[0]


@pytest.mark.parametrize("name, cv_folds, shift", [
    ("scratch", 2, 0.0), ("gan-frozen", 2, 0.0), ("gan-finetune", 2, 0.0), ("gan-finetune", 0, 0.0),
    ("gan-finetune", 2, 0.1)])  # with augmentation the head phase trains on cached views
def test_an_ensembles_members_are_refits_that_differ_and_it_saves_and_predicts(
        split, tmp_path, name, cv_folds, shift):
    from gantransfer.transfer_learning.classifiers import load_classifier

    outcome = RUNNERS[name](_context(split, cv_folds=cv_folds, ensemble=3, augment_shift=shift))
    notes = [n for n in outcome.record["notes"] if n.startswith("an ensemble of ")]
    assert len(notes) == 1 and "(transfer.ensemble)" in notes[0], outcome.record["notes"]
    kept = int(notes[0].split()[3])
    assert 1 <= kept <= 3 and outcome.record["selection"].endswith(f"averaged over {kept} refits")
    path = tmp_path / f"{name}.keras"
    outcome.model.save(path)
    loaded = load_classifier(path)
    predicted = np.argmax(loaded.predict(split.x_test, verbose=0), axis=-1)
    np.testing.assert_array_equal(predicted, outcome.predictions)
    # Without refit there is nothing to repeat: one model, and the note says why.
    single = RUNNERS[name](_context(split, cv_folds=0, refit=False, ensemble=3))
    assert any(n.startswith("one model, not an ensemble of 3") for n in single.record["notes"])


def test_a_randomly_initialised_backbone_starts_from_its_seed_whatever_ran_before(split):
    from gantransfer.transfer_learning import strategies

    first = strategies._backbone(_context(split), [])
    context = _context(split)
    keras.utils.set_random_seed(123)  # what an earlier strategy may leave behind
    second = strategies._backbone(context, [])
    assert len(first.weights) == len(second.weights) > 0
    for a, b in zip(first.weights, second.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)


def test_the_semisupervised_gan_feeds_on_the_unlabeled_pool_and_says_how_it_trained(split):
    asked = []

    def pool(count):
        asked.append(count)
        return np.concatenate([split.unlabeled, split.unlabeled])[:count]

    bigger = Split(**{**split.__dict__, "unlabeled_pool": pool})
    outcome = RUNNERS["gan-semisupervised"](_context(bigger, semisupervised_images=500,
                                                     semisupervised_steps=20, ensemble=3,
                                                     semisupervised_decay=0.5))
    assert asked == [500]  # beyond the 300 BatchNorm images, the pool is read
    notes = " ".join(outcome.record["notes"])
    # 500 images make 15 batches of 32 a pass: 20 steps round up to 2 passes, 30 steps
    assert "30 steps of 32 unlabeled, 32 generated and 32 labeled images" in notes
    assert "2 passes over 500 unlabeled training images" in notes
    assert "the learning rate decayed linearly over the last 50% of the steps" in notes
    assert "weights of 5 layers imported from the discriminator" in notes
    assert "not an ensemble of 3" in notes
    assert len(outcome.record["history"]["d_loss"]) == outcome.record["epochs"] == 2
    assert Split(**split.__dict__).more_unlabeled(50).shape[0] == 50  # no pool: its own images


def test_the_semisupervised_gan_is_skipped_under_adversarial_training(split):
    with pytest.raises(strategies_module.StrategySkipped, match="adversarial_training"):
        RUNNERS["random-semisupervised"](_context(split, adversarial_training="fgsm"))


@pytest.mark.slow
def test_models_trained_in_worker_processes_are_the_ones_trained_here(digits, tmp_path):
    """Two processes on one thread each train the same models as this process does, in order;
    the in-memory discriminator reaches them through a file."""
    small = digits.with_label_budget(6, seed=0)
    keras.utils.set_random_seed(0)
    discriminator = build_discriminator(32, 1, width=0.125, kernel_size=3)
    runs, seen = {}, {}
    for workers in (1, 2):
        settings = TransferConfig(**{**FAST.__dict__, "workers": workers})
        seen[workers] = []
        runs[workers] = run_transfer(small, ["scratch", "gan-frozen", "pixels-linear"], [3], 2,
                                     settings, discriminator=discriminator,
                                     models_dir=tmp_path / str(workers),
                                     on_result=seen[workers].append)
    rows = {w: [(r.strategy, r.seed, r.status, r.test_accuracy, r.confusion_matrix,
                 r.learning_rate, r.C) for r in run.results] for w, run in runs.items()}
    assert rows[2] == rows[1]
    assert [(r[0], r[1]) for r in rows[2]] == [(n, s) for s in (0, 1)
                                               for n in ("scratch", "gan-frozen", "pixels-linear")]
    assert all(r[2] == "ok" for r in rows[2])
    assert sorted(id(r) for r in seen[2]) == sorted(id(r) for r in runs[2].results)
    for one, two in zip(runs[1].results, runs[2].results):
        assert two.model_file == one.model_file.replace(f"{tmp_path / '1'}", f"{tmp_path / '2'}")
        first = keras.saving.load_model(one.model_file).predict(small.test.load(range(20)), verbose=0)
        second = keras.saving.load_model(two.model_file).predict(small.test.load(range(20)), verbose=0)
        np.testing.assert_allclose(second, first, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_a_strategy_skipped_in_a_worker_is_skipped_at_every_budget_with_its_reason(digits):
    small = digits.with_label_budget(6, seed=0)
    settings = TransferConfig(**{**FAST.__dict__, "workers": 2, "adversarial_training": "fgsm"})
    run = run_transfer(small, ["pixels-linear", "random-semisupervised"], [3, 4], 2, settings,
                       architecture=ARCH)
    by_model = {(r.strategy, r.labels_per_class, r.seed): r for r in run.results}
    assert len(by_model) == 8
    assert all(by_model[("pixels-linear", b, s)].status == "ok" for b in (3, 4) for s in (0, 1))
    skipped = [by_model[("random-semisupervised", b, s)] for b in (3, 4) for s in (0, 1)]
    assert {r.status for r in skipped} == {"skipped"}
    assert len({r.reason for r in skipped}) == 1 and "adversarial" in skipped[0].reason
    assert [s["strategy"] for s in run.skipped] == ["random-semisupervised"]


def test_auto_workers_take_the_cores_the_models_and_the_memory_there_are(monkeypatch):
    from gantransfer import backend, runs, runtime
    from gantransfer.runtime import Runtime
    from gantransfer.transfer_learning.protocol import WORKER_MEMORY, worker_count

    monkeypatch.setattr(backend, "usable_cores", lambda: 8)
    monkeypatch.setattr(backend, "accelerators", lambda: [])
    monkeypatch.setattr(runs, "available_memory", lambda: 100 * WORKER_MEMORY)
    assert worker_count("auto", models=48) == 8
    assert worker_count("auto", models=3) == 3
    assert worker_count(5, models=48) == 5 and worker_count(5, models=2) == 2
    monkeypatch.setattr(runs, "available_memory", lambda: 3 * WORKER_MEMORY + 1)
    assert worker_count("auto", models=48) == 3
    with monkeypatch.context() as distributed:
        distributed.setattr(runtime, "current", lambda: Runtime(distribute="mirrored"))
        assert worker_count("auto", models=48) == 1
        with pytest.raises(ConfigError, match="transfer.workers=4: several processes"):
            worker_count(4, models=48)
    monkeypatch.setattr(backend, "accelerators", lambda: ["/device:GPU:0"])
    assert worker_count("auto", models=48) == 1 and worker_count(1, models=48) == 1
    with pytest.raises(ConfigError, match="set transfer.workers=auto or 1"):
        worker_count(2, models=48)


def test_a_process_given_a_share_of_the_cores_keeps_to_it(monkeypatch):
    from gantransfer import backend

    cores = len(os.sched_getaffinity(0))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    assert backend.usable_cores() == cores
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert backend.usable_cores() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert backend.usable_cores() == cores
