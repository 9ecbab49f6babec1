"""compare and transfer: one dataset load per compare, the generator scored in memory, the data
loaded at an external discriminator's size, run folders checked first, public parameters only."""

import inspect
import json
import re
from pathlib import Path

import keras
import pytest

import gantransfer.workflows.experiment as experiment
from gantransfer.config import load_config
from gantransfer.errors import ConfigError, DataError, RunFolderError
from gantransfer.gan.models import build_discriminator

FAST = ["data.image_size=16", "train.epochs=1", "train.metrics_images=50",
        "transfer.labels_per_class=3", "transfer.seeds=1", "transfer.max_epochs=2",
        "transfer.patience=1", "transfer.learning_rates=0.01", "transfer.probe_c=0.1",
        "transfer.bn_images=50", "transfer.cv_folds=2"]


@pytest.fixture
def loads(monkeypatch):
    """Every ``load_dataset`` call anywhere in gantransfer, as its image size."""
    import sys

    from gantransfer.data import sources

    sizes: list[int] = []
    real = sources.load_dataset

    def counting(*args, **kwargs):
        sizes.append(kwargs["image_size"])
        return real(*args, **kwargs)

    # Every module that imported the function by name gets the counting one: no load goes unseen.
    for name, module in list(sys.modules.items()):
        if name.startswith("gantransfer") and getattr(module, "load_dataset", None) is real:
            monkeypatch.setattr(module, "load_dataset", counting)
    return sizes


def test_transfer_and_compare_take_only_public_parameters():
    transfer = inspect.signature(experiment.transfer).parameters
    assert list(transfer) == ["config", "run_dir", "discriminator", "overwrite", "resume",
                              "verbose"]
    compare = inspect.signature(experiment.compare).parameters
    assert list(compare) == ["config", "run_dir", "overwrite", "resume", "verbose"]


@pytest.mark.slow
def test_compare_loads_the_dataset_once_and_scores_the_generator_in_memory(
        tmp_path, monkeypatch, tiny_overrides, loads):
    read_back: list[str] = []
    real_load_model = keras.saving.load_model

    def watching(path, *args, **kwargs):
        read_back.append(str(path))
        return real_load_model(path, *args, **kwargs)

    monkeypatch.setattr(keras.saving, "load_model", watching)
    scored = []
    real_score = experiment.score_generator

    def spying(generator, data, **kwargs):
        scored.append((generator, data))
        return real_score(generator, data, **kwargs)

    monkeypatch.setattr(experiment, "score_generator", spying)
    config = load_config(None, [*tiny_overrides, *FAST,
                                "transfer.strategies=scratch,gan-linear-probe"])

    result = experiment.compare(config, tmp_path / "cmp", verbose=False)

    assert loads == [16]
    assert not [path for path in read_back if path.endswith("generator.keras")]
    [(generator, data)] = scored
    assert generator is result.gan.gan.generator
    assert (data.image_size, len(data.val)) == (16, 0)
    metrics = json.loads((tmp_path / "cmp/gan/gan_metrics.json").read_text())
    assert metrics["real_images"] == metrics["generated_images"] == 100
    assert [r.status for r in result.results] == ["ok", "ok"]
    context = json.loads((tmp_path / "cmp/results.json").read_text())["context"]
    assert context["gan"]["FID"] == round(metrics["fid"], 3)
    assert not any("brought to the GAN's" in note for note in context["notes"])
    # compare tests on exactly the images its GAN held out.
    gan_split = json.loads((tmp_path / "cmp/gan/run.json").read_text())["dataset"]
    assert json.loads((tmp_path / "cmp/run.json").read_text())["test_sha256"] == \
        gan_split["test_sha256"] == data.test.fingerprint()


def test_transfer_loads_the_target_at_an_external_discriminators_size(tmp_path, loads):
    config = load_config(None, [*FAST, "transfer.strategies=gan-linear-probe"])
    small = build_discriminator(8, 1, width=0.125, kernel_size=3)
    result = experiment.transfer(config, tmp_path / "run", discriminator=small, verbose=False)
    assert loads == [8]
    assert [r.status for r in result.results] == ["ok"]
    context = json.loads((tmp_path / "run/results.json").read_text())["context"]
    assert any("brought to the GAN's 8x8x1 (the config asked for 16 px" in note
               for note in context["notes"])


def test_an_existing_run_folder_fails_before_any_load(tmp_path, loads):
    (tmp_path / "run").mkdir()
    (tmp_path / "run/old.txt").write_text("kept")
    config = load_config(None, FAST)
    for run in (experiment.transfer, experiment.compare):
        with pytest.raises(RunFolderError):
            run(config, tmp_path / "run", verbose=False)
    assert loads == [] and (tmp_path / "run/old.txt").read_text() == "kept"


def test_bad_data_leaves_no_run_folder(tmp_path):
    config = load_config(None, [*FAST, "data.dataset=no_such_dataset"])
    for run in (experiment.transfer, experiment.compare):
        with pytest.raises(DataError, match="no_such_dataset"):
            run(config, tmp_path / run.__name__, verbose=False)
        assert not (tmp_path / run.__name__).exists()


@pytest.mark.slow
def test_transfer_from_a_gan_run_tests_only_on_images_the_gan_never_saw(tmp_path, tiny_overrides):
    from gantransfer.data import load_dataset
    from gantransfer.gan.train import train_gan

    gan_config = load_config(None, [*tiny_overrides, *FAST, "train.seed=1"])
    train_gan(gan_config, tmp_path / "gan")
    held_out = json.loads((tmp_path / "gan/run.json").read_text())["dataset"]
    # The reproduction: split by transfer's own seed (0), the test images overlap the GAN's.
    gan_train = load_dataset("digits", image_size=16, validation_split=0.0, seed=1).train.x
    naive_test = load_dataset("digits", image_size=16, validation_split=0.0, seed=0).test.x
    seen = {image.tobytes() for image in gan_train}
    assert sum(image.tobytes() in seen for image in naive_test) > 100

    config = load_config(None, [*tiny_overrides, *FAST, "transfer.strategies=gan-linear-probe"])
    result = experiment.transfer(config, tmp_path / "transfer", discriminator=tmp_path / "gan",
                                 verbose=False)
    manifest = json.loads((result.run_dir / "run.json").read_text())
    assert manifest["test_sha256"] == held_out["test_sha256"]  # exactly the GAN's held-out images
    notes = json.loads((result.run_dir / "results.json").read_text())["context"]["notes"]
    assert any("test split taken from the GAN run" in note for note in notes)

    # A test split that still differs (here: a tampered record) is refused before any folder.
    record = json.loads((tmp_path / "gan/run.json").read_text())
    record["dataset"]["test_sha256"] = "0" * 64
    (tmp_path / "gan/run.json").write_text(json.dumps(record))
    with pytest.raises(DataError, match="differ from the ones the GAN run held out"):
        experiment.transfer(config, tmp_path / "refused", discriminator=tmp_path / "gan")
    assert not (tmp_path / "refused").exists()
    # ... unless the user says so explicitly, and then the report says so too.
    config.transfer.allow_test_overlap = True
    result = experiment.transfer(config, tmp_path / "allowed", discriminator=tmp_path / "gan",
                                 verbose=False)
    notes = json.loads((result.run_dir / "results.json").read_text())["context"]["notes"]
    assert any(note.startswith("WARNING: the test images") for note in notes)


@pytest.mark.slow
def test_an_interrupted_transfer_resumes_keeping_its_finished_models(tmp_path, tiny_overrides,
                                                                     monkeypatch):
    from gantransfer.transfer_learning import strategies

    config = load_config(None, [*tiny_overrides, *FAST, "transfer.report_pictures=true",
                                "transfer.strategies=scratch,pixels-linear,random-linear-probe"])

    def crash(context):
        raise KeyboardInterrupt  # the user's Ctrl-C, in the middle of the run

    monkeypatch.setitem(strategies.RUNNERS, "random-linear-probe", crash)
    with pytest.raises(KeyboardInterrupt):
        experiment.transfer(config, tmp_path / "run", verbose=False)
    partial = json.loads((tmp_path / "run/results.partial.json").read_text())["results"]
    assert [row["strategy"] for row in partial] == ["scratch", "pixels-linear"]
    with pytest.raises(RunFolderError, match="already exists; pass --resume"):
        experiment.transfer(config, tmp_path / "run", verbose=False)

    # On resume the two finished models are kept as they were: their runners must not run again.
    # The folder has moved since (and the report's Grad-CAM loads scratch's model from it).
    monkeypatch.undo()
    for name in ("scratch", "pixels-linear"):
        monkeypatch.setitem(strategies.RUNNERS, name, crash)
    (tmp_path / "run").rename(tmp_path / "moved")
    monkeypatch.chdir(tmp_path / "moved")
    # A resume may train in another number of processes: a model's numbers do not depend on it.
    config = load_config(None, [*tiny_overrides, *FAST, "transfer.report_pictures=true",
                                "transfer.strategies=scratch,pixels-linear,random-linear-probe",
                                "transfer.workers=1"])
    result = experiment.transfer(config, ".", resume=True, verbose=False)
    assert all((tmp_path / "moved" / r.model_file).is_file() for r in result.results)
    assert result.results[0].model_file == "models/scratch_lpc-3_seed-0.keras"
    assert (tmp_path / "moved/pictures/gradcam.png").is_file()
    (tmp_path / "moved").rename(tmp_path / "run")
    assert [r.strategy for r in result.results] == ["scratch", "pixels-linear",
                                                   "random-linear-probe"]
    assert [r.test_accuracy for r in result.results[:2]] == [row["test_accuracy"] for row in partial]
    assert not (tmp_path / "run/results.partial.json").exists()
    assert len(json.loads((tmp_path / "run/results.json").read_text())["results"]) == 3
    with pytest.raises(RunFolderError, match="is complete: nothing to resume"):
        experiment.transfer(config, tmp_path / "run", resume=True)


def test_a_transfer_killed_while_writing_its_last_files_is_finished_by_resume(tmp_path,
                                                                               tiny_overrides,
                                                                               monkeypatch):
    from gantransfer.transfer_learning import strategies

    config = load_config(None, [*tiny_overrides, *FAST, "transfer.strategies=pixels-linear"])
    real_write = experiment.atomic_write_json

    def killed_at_run_json(path, document):
        if Path(path).name == "run.json":
            raise KeyboardInterrupt  # the kill, after the report and before run.json
        real_write(path, document)

    with monkeypatch.context() as patch:
        patch.setattr(experiment, "atomic_write_json", killed_at_run_json)
        with pytest.raises(KeyboardInterrupt):
            experiment.transfer(config, tmp_path / "run", verbose=False)
    assert (tmp_path / "run/results.json").is_file() and not (tmp_path / "run/run.json").exists()

    def crash(context):
        raise AssertionError("the finished model must not be trained again")

    first = json.loads((tmp_path / "run/results.partial.json").read_text())
    assert first["sessions"] == 1 and first["wall_time_s"] > 0
    monkeypatch.setitem(strategies.RUNNERS, "pixels-linear", crash)
    result = experiment.transfer(config, tmp_path / "run", resume=True, verbose=False)
    assert [r.strategy for r in result.results] == ["pixels-linear"]
    manifest = json.loads((tmp_path / "run/run.json").read_text())
    assert manifest["models"] == 1
    # The time is the run's, the killed session's included, not only the resume's.
    assert manifest["sessions"] == 2 and manifest["wall_time_s"] > first["wall_time_s"]
    assert not (tmp_path / "run/results.partial.json").exists()
    with pytest.raises(RunFolderError, match="is complete: nothing to resume"):
        experiment.transfer(config, tmp_path / "run", resume=True)


def test_resume_refuses_another_discriminator_than_the_finished_models_came_from(
        tmp_path, tiny_overrides, monkeypatch):
    from gantransfer.errors import ConfigError
    from gantransfer.gan.models import build_discriminator
    from gantransfer.transfer_learning import strategies

    files = []
    for seed in (0, 1):
        keras.utils.set_random_seed(seed)
        files.append(tmp_path / f"d{seed}.keras")
        build_discriminator(16, 1, width=0.125, kernel_size=3).save(files[-1])
    config = load_config(None, [*tiny_overrides, *FAST,
                                "transfer.strategies=gan-linear-probe,pixels-linear"])

    def crash(context):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setitem(strategies.RUNNERS, "pixels-linear", crash)
        with pytest.raises(KeyboardInterrupt):
            experiment.transfer(config, tmp_path / "run", discriminator=files[0], verbose=False)
    with pytest.raises(ConfigError, match="cannot resume .* with another discriminator"):
        experiment.transfer(config, tmp_path / "run", discriminator=files[1], resume=True,
                            verbose=False)
    partial = json.loads((tmp_path / "run/results.partial.json").read_text())
    assert [row["strategy"] for row in partial["results"]] == ["gan-linear-probe"]  # kept
    result = experiment.transfer(config, tmp_path / "run", discriminator=files[0], resume=True,
                                 verbose=False)
    assert [r.strategy for r in result.results] == ["gan-linear-probe", "pixels-linear"]


def test_resume_refuses_another_config_and_fewer_seeds_budgets_or_strategies(tmp_path,
                                                                             tiny_overrides):
    from gantransfer.config import save_config

    config = load_config(None, [*tiny_overrides, *FAST, "transfer.seeds=2",
                                "transfer.labels_per_class=3,5"])
    (tmp_path / "run").mkdir()
    save_config(config, tmp_path / "run/config.yaml")
    changed = load_config(None, [*tiny_overrides, *FAST, "transfer.seeds=2",
                                 "transfer.labels_per_class=3,5", "transfer.max_epochs=3"])
    with pytest.raises(ConfigError, match="other settings: transfer.max_epochs was 2 in this run "
                                          "and is 3 now"):
        experiment.transfer(changed, tmp_path / "run", resume=True)
    for fewer, said in [("transfer.seeds=1", "transfer.seeds was 2 in this run and is 1 now"),
                        ("transfer.labels_per_class=5,10", "transfer.labels_per_class was [3, 5]")]:
        less = load_config(None, [*tiny_overrides, *FAST, "transfer.seeds=2",
                                  "transfer.labels_per_class=3,5", fewer])
        with pytest.raises(ConfigError, match=f"with less than it has: {re.escape(said)}.*not "
                                              "drop them"):
            experiment.transfer(less, tmp_path / "run", resume=True)
    assert load_config(tmp_path / "run/config.yaml").to_dict() == config.to_dict()  # untouched


@pytest.mark.slow
def test_a_resume_adds_seeds_budgets_and_strategies_to_a_complete_run(tmp_path, tiny_overrides,
                                                                       monkeypatch):
    from click.testing import CliRunner

    from gantransfer.cli import cli
    from gantransfer.transfer_learning import strategies

    config = load_config(None, [*tiny_overrides, *FAST, "transfer.strategies=scratch,pixels-linear"])
    first = experiment.transfer(config, tmp_path / "run", verbose=False)
    before = {(r.strategy, r.labels_per_class, r.seed): r.test_accuracy for r in first.results}
    first_time = json.loads((tmp_path / "run/run.json").read_text())["wall_time_s"]
    trained: list[str] = []
    for name in ("scratch", "pixels-linear", "random-linear-probe"):
        monkeypatch.setitem(strategies.RUNNERS, name, lambda context, real=strategies.RUNNERS[name]:
                            (trained.append(context.label.split("] ")[1]), real(context))[1])
    grow = ["transfer", "--output-dir", str(tmp_path / "run"), "--resume", "--quiet", "--seeds", "2",
            "--labels-per-class", "3,5", "--strategies", "scratch,pixels-linear,random-linear-probe"]
    result = CliRunner().invoke(cli, grow)
    assert result.exit_code == 0, result.output
    assert "12 models trained (2 of them in earlier sessions, kept), 0 skipped" in result.output
    # Every model but the run's own two trained, and those two are as they were.
    assert sorted(trained) == sorted(
        f"{name}, {budget} labels/class, seed {seed}" for budget in (3, 5) for seed in (0, 1)
        for name in ("scratch", "pixels-linear", "random-linear-probe")
        if (name, budget, seed) not in before)
    rows = json.loads((tmp_path / "run/results.json").read_text())["results"]
    assert len(rows) == 12 and all(row["status"] == "ok" for row in rows)
    assert {key: row["test_accuracy"] for row in rows
            if (key := (row["strategy"], row["labels_per_class"], row["seed"])) in before} == before
    manifest = json.loads((tmp_path / "run/run.json").read_text())
    assert manifest["seeds"] == 2 and manifest["models"] == 12 and manifest["sessions"] == 2
    assert manifest["wall_time_s"] > first_time
    assert load_config(tmp_path / "run/config.yaml").transfer.seeds == 2  # the run is the grown one
    assert "5 labels/class" in (tmp_path / "run/report.md").read_text()
    assert not (tmp_path / "run/results.partial.json").exists()
    # An added model is the one a run with those settings from the start trains.
    monkeypatch.undo()
    straight = experiment.transfer(
        load_config(None, [*tiny_overrides, *FAST, "transfer.strategies=scratch",
                           "transfer.seeds=2"]), tmp_path / "straight", verbose=False)
    assert straight.results[1].seed == 1
    assert straight.results[1].test_accuracy == next(
        row["test_accuracy"] for row in rows if (row["strategy"], row["labels_per_class"],
                                                 row["seed"]) == ("scratch", 3, 1))
    # Grown to what it asks, it is complete again; the line says how to add more.
    result = CliRunner().invoke(cli, grow)
    assert result.exit_code == 1 and "is complete: nothing to resume (a resume may add to it: " \
        "more --seeds" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_added_seeds_keep_the_discriminators_the_runs_seeds_had(tmp_path, tiny_overrides):
    keras.utils.set_random_seed(0)
    first, second, third = (build_discriminator(16, 1, width=0.125) for _ in range(3))
    config = load_config(None, [*tiny_overrides, *FAST, "transfer.strategies=gan-linear-probe"])
    experiment.transfer(config, tmp_path / "one", discriminator=first, verbose=False)
    two = load_config(None, [*tiny_overrides, *FAST, "transfer.strategies=gan-linear-probe",
                             "transfer.seeds=2"])
    with pytest.raises(ConfigError, match="with another discriminator"):  # seed 0's changed
        experiment.transfer(two, tmp_path / "one", discriminator=[second, first], resume=True)
    assert load_config(tmp_path / "one/config.yaml").transfer.seeds == 1  # refused: untouched
    # One GAN per seed from here on: seed 0 keeps its own, seed 1 gets another.
    result = experiment.transfer(two, tmp_path / "one", discriminator=[first, second],
                                 resume=True, verbose=False)
    assert [r.seed for r in result.results] == [0, 1]
    # A run whose two seeds shared one GAN cannot give its seed 1 another one.
    experiment.transfer(two, tmp_path / "shared", discriminator=first, verbose=False)
    three = load_config(None, [*tiny_overrides, *FAST, "transfer.strategies=gan-linear-probe",
                               "transfer.seeds=3"])
    with pytest.raises(ConfigError, match="with another discriminator"):
        experiment.transfer(three, tmp_path / "shared", discriminator=[first, second, third],
                            resume=True)
    result = experiment.transfer(three, tmp_path / "shared", discriminator=first, resume=True,
                                 verbose=False)
    assert [r.seed for r in result.results] == [0, 1, 2]


@pytest.mark.slow
def test_an_interrupted_compare_resumes_with_its_finished_gan(tmp_path, tiny_overrides,
                                                              monkeypatch):
    from click.testing import CliRunner

    from gantransfer.cli import cli
    from gantransfer.transfer_learning import strategies

    def crash(context):
        raise KeyboardInterrupt

    out = tmp_path / "cmp"
    sets = [arg for item in [*tiny_overrides, *FAST] for arg in ("--set", item)]
    monkeypatch.setitem(strategies.RUNNERS, "pixels-linear", crash)
    result = CliRunner().invoke(cli, ["compare", "--strategies", "scratch,pixels-linear",
                                      "--output-dir", str(out), "--quiet", *sets])
    assert result.exit_code == 130  # interrupted: the finished epochs and models are kept
    monkeypatch.undo()

    def no_training(*args, **kwargs):
        raise AssertionError("the finished GAN must not be trained again")

    monkeypatch.setattr(experiment, "train_gan", no_training)
    result = CliRunner().invoke(cli, ["compare", "--output-dir", str(out), "--resume", "--quiet"])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "results.json").read_text())["results"]
    assert [row["strategy"] for row in rows] == ["scratch", "pixels-linear"]


def test_resume_refuses_an_unreadable_partial_results_file(tmp_path, tiny_overrides):
    from gantransfer.config import save_config

    config = load_config(None, [*tiny_overrides, *FAST])
    (tmp_path / "run").mkdir()
    save_config(config, tmp_path / "run/config.yaml")
    (tmp_path / "run/results.partial.json").write_text('{"results": [{"strategy": ')
    with pytest.raises(RunFolderError, match="results.partial.json' is unreadable .*delete it"):
        experiment.transfer(config, tmp_path / "run", resume=True)


def test_missing_imagenet_weights_are_reported_before_any_model_trains(tmp_path, tiny_overrides,
                                                                         keras_home, monkeypatch,
                                                                         caplog):
    warned_before_training: list[bool] = []
    real_run_transfer = experiment.run_transfer

    def watching(*args, **kwargs):
        warned_before_training.append("imagenet-frozen will be skipped: ImageNet weights for "
                                      "mobilenet" in caplog.text)
        return real_run_transfer(*args, **kwargs)

    monkeypatch.setattr(experiment, "run_transfer", watching)
    config = load_config(None, [*tiny_overrides, *FAST, "transfer.strategies=pixels-linear,"
                                "imagenet-frozen", "transfer.backbone_alpha=0.25",
                                "transfer.backbone_input_size=32"])
    with caplog.at_level("WARNING", logger="gantransfer"):
        result = experiment.transfer(config, tmp_path / "run", verbose=False)
    assert warned_before_training == [True]
    assert keras_home.attempts  # the download was tried up front
    assert {(r.strategy, r.status) for r in result.results} == {("pixels-linear", "ok"),
                                                                ("imagenet-frozen", "skipped")}


def _first_kernel(model: keras.Model):
    layer = next(layer for layer in model._flatten_layers() if layer.name == "block1_conv")
    return keras.ops.convert_to_numpy(layer.kernel)


@pytest.mark.slow
def test_transfer_and_compare_start_from_the_best_probe_discriminator(tmp_path, tiny_overrides):
    import numpy as np

    from gantransfer.gan.train import train_gan

    probe = ["train.probe_every=1", "train.probe_images=100", "train.epochs=3"]
    train_gan(load_config(None, [*tiny_overrides, *FAST, *probe]), tmp_path / "gan")
    manifest = json.loads((tmp_path / "gan/run.json").read_text())
    best = keras.saving.load_model(tmp_path / "gan/discriminator_best_probe.keras")
    last = keras.saving.load_model(tmp_path / "gan/discriminator.keras")

    frozen = [*tiny_overrides, *FAST, "transfer.strategies=gan-frozen"]
    for choice, expected in (("best-probe", best), ("last", last)):
        config = load_config(None, [*frozen, f"transfer.gan_discriminator={choice}"])
        result = experiment.transfer(config, tmp_path / choice, discriminator=tmp_path / "gan",
                                     verbose=False)
        model = keras.saving.load_model(result.results[0].model_file)
        np.testing.assert_array_equal(_first_kernel(model), _first_kernel(expected))
        notes = json.loads((result.run_dir / "results.json").read_text())["context"]["notes"]
        said = [note for note in notes if "seeds the gan-* strategies" in note]
        if choice == "best-probe":
            assert said == [note for note in said
                            if f"epoch {manifest['best_probe_epoch']} of 3" in note]
            assert said and "beyond the budgets" in said[0]
        else:
            assert not said

    result = experiment.compare(load_config(None, [*frozen, *probe, "transfer.gan_metrics=false"]),
                                tmp_path / "compare", verbose=False)
    compared = json.loads((result.run_dir / "gan/run.json").read_text())
    model = keras.saving.load_model(result.results[0].model_file)
    chosen = keras.saving.load_model(result.run_dir / "gan/discriminator_best_probe.keras")
    np.testing.assert_array_equal(_first_kernel(model), _first_kernel(chosen))
    notes = json.loads((result.run_dir / "results.json").read_text())["context"]["notes"]
    assert any(f"epoch {compared['best_probe_epoch']} of 3" in note for note in notes)


@pytest.mark.slow
def test_one_gan_per_seed_starts_each_seeds_models_and_a_resume_trains_only_the_missing_gan(
        tmp_path, tiny_overrides, monkeypatch):
    import numpy as np
    from click.testing import CliRunner

    from gantransfer.cli import cli

    out = tmp_path / "cmp"
    real_train_gan = experiment.train_gan
    trained: list[str] = []

    def interrupted_at_the_second(config, run_dir, **kwargs):
        if Path(run_dir).name == "gan-seed-1":
            raise KeyboardInterrupt
        trained.append(Path(run_dir).name)
        return real_train_gan(config, run_dir, **kwargs)

    monkeypatch.setattr(experiment, "train_gan", interrupted_at_the_second)
    sets = [arg for item in [*tiny_overrides, *FAST, "transfer.seeds=2",
                             "transfer.gan_metrics=false"] for arg in ("--set", item)]
    result = CliRunner().invoke(cli, ["compare", "--gan-per-seed", "--strategies",
                                      "gan-frozen,random-frozen", "--output-dir", str(out),
                                      "--quiet", *sets])
    assert result.exit_code == 130 and trained == ["gan"]
    monkeypatch.setattr(experiment, "train_gan", lambda config, run_dir, **kwargs: (
        trained.append(Path(run_dir).name), real_train_gan(config, run_dir, **kwargs))[1])
    result = CliRunner().invoke(cli, ["compare", "--output-dir", str(out), "--resume", "--quiet"])
    assert result.exit_code == 0, result.output
    assert trained == ["gan", "gan-seed-1"]  # the finished GAN was kept

    gans = [json.loads((out / name / "run.json").read_text()) for name in ("gan", "gan-seed-1")]
    assert [gan["seed"] for gan in gans] == [0, 1]
    # Both held out the same test images, the ones the comparison tests on.
    assert gans[0]["dataset"]["test_sha256"] == gans[1]["dataset"]["test_sha256"]
    assert [gan["dataset"]["split_seed"] for gan in gans] == [0, 0]
    discriminators = [_first_kernel(keras.saving.load_model(out / name / "discriminator.keras"))
                      for name in ("gan", "gan-seed-1")]
    assert not np.array_equal(*discriminators)
    for seed, expected in enumerate(discriminators):  # each seed's frozen trunk is its own GAN's
        model = keras.saving.load_model(out / f"models/gan-frozen_lpc-3_seed-{seed}.keras")
        np.testing.assert_array_equal(_first_kernel(model), expected)
    report = (out / "report.md").read_text()
    assert "each seed's GAN strategies start from its own GAN" in report
    assert "gan/, gan-seed-1/: one GAN per seed" in report
    notes = json.loads((out / "results.json").read_text())["context"]["notes"]
    assert any(note.startswith("one GAN per seed") for note in notes)
    assert any(note.startswith("seed 1's GAN (gan-seed-1/, train.seed=1)") for note in notes)

    # A third seed added to the complete run trains its own GAN and its two models, nothing else.
    before = json.loads((out / "results.json").read_text())["results"]
    result = CliRunner().invoke(cli, ["compare", "--output-dir", str(out), "--resume", "--seeds",
                                      "3", "--quiet"])
    assert result.exit_code == 0, result.output
    assert trained == ["gan", "gan-seed-1", "gan-seed-2"]
    assert json.loads((out / "gan-seed-2/run.json").read_text())["seed"] == 2
    rows = json.loads((out / "results.json").read_text())["results"]
    assert sorted((row["strategy"], row["seed"]) for row in rows) == sorted(
        (name, seed) for name in ("gan-frozen", "random-frozen") for seed in range(3))
    assert [row for row in rows if row["seed"] < 2] == before  # kept as they were


def test_transfer_refuses_one_gan_per_seed_before_touching_the_folder(tmp_path, tiny_overrides):
    config = load_config(None, [*tiny_overrides, *FAST, "transfer.gan_per_seed=true"])
    with pytest.raises(ConfigError, match="transfer.gan_per_seed trains one GAN per seed, which "
                                          "compare does"):
        experiment.transfer(config, tmp_path / "run",
                            discriminator=build_discriminator(16, 1, width=0.125))
    assert not (tmp_path / "run").exists()


def test_per_seed_discriminators_must_be_one_per_seed_and_of_one_architecture():
    from gantransfer.data import load_dataset
    from gantransfer.transfer_learning.protocol import run_transfer

    config = load_config(None, FAST)
    data = load_dataset("digits", image_size=16, channels=1, validation_split=0.0)
    narrow, wide = (build_discriminator(16, 1, width=w) for w in (0.125, 0.25))
    with pytest.raises(ConfigError, match="given 3 discriminators for 2 seeds"):
        run_transfer(data, ["gan-frozen"], [3], 2, config.transfer,
                     discriminator=[narrow, narrow, narrow])
    with pytest.raises(ConfigError, match="the seeds' discriminators differ in architecture"):
        run_transfer(data, ["gan-frozen"], [3], 2, config.transfer, discriminator=[narrow, wide])


@pytest.mark.slow
def test_transfer_starts_each_seed_from_its_own_gan_run_that_held_out_the_same_images(
        tmp_path, tiny_overrides):
    import numpy as np
    from click.testing import CliRunner

    from gantransfer.cli import cli
    from gantransfer.gan.train import train_gan

    for seed, split_seed in ((0, 0), (1, 0), (2, 2)):
        train_gan(load_config(None, [*tiny_overrides, *FAST, f"train.seed={seed}",
                                     f"data.split_seed={split_seed}"]), tmp_path / f"gan{seed}")
    sets = [arg for item in [*tiny_overrides, *FAST] for arg in ("--set", item)]
    command = ["transfer", "--strategies", "gan-frozen", "--quiet", *sets, "--set",
               "transfer.seeds=2"]
    result = CliRunner().invoke(cli, [*command, "--gan-run", str(tmp_path / "gan0"), "--gan-run",
                                      str(tmp_path / "gan1"), "--output-dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    for seed in (0, 1):
        model = keras.saving.load_model(tmp_path / f"run/models/gan-frozen_lpc-3_seed-{seed}.keras")
        expected = keras.saving.load_model(tmp_path / f"gan{seed}/discriminator.keras")
        np.testing.assert_array_equal(_first_kernel(model), _first_kernel(expected))
    run = json.loads((tmp_path / "run/run.json").read_text())
    assert run["discriminator"] == [str(tmp_path / "gan0"), str(tmp_path / "gan1")]
    assert "each seed's GAN strategies start from its own GAN" in (
        tmp_path / "run/report.md").read_text()

    # Not one per seed; a GAN that held out other test images (it trained on some of these).
    three = [arg for name in ("gan0", "gan1", "gan0") for arg in ("--gan-run", str(tmp_path / name))]
    result = CliRunner().invoke(cli, [*command, *three, "--output-dir", str(tmp_path / "three")])
    assert result.exit_code == 1 and "3 GANs for 2 seeds: give one --gan-run" in result.output
    result = CliRunner().invoke(cli, [*command, "--gan-run", str(tmp_path / "gan0"), "--gan-run",
                                      str(tmp_path / "gan2"), "--output-dir", str(tmp_path / "mix")])
    assert result.exit_code == 1 and "same data.test_split and data.split_seed" in result.output
    assert "held out other test images than the ones this transfer tests on" in result.output
    wide = build_discriminator(16, 1, width=0.25)
    wide.save(tmp_path / "wide.keras")
    result = CliRunner().invoke(cli, [*command, "--discriminator", str(tmp_path / "gan0/"
                                      "discriminator.keras"), "--discriminator",
                                      str(tmp_path / "wide.keras"), "--output-dir",
                                      str(tmp_path / "wide")])
    assert result.exit_code == 1 and "differs in architecture from the first" in result.output
    assert not any((tmp_path / name).exists() for name in ("three", "mix", "wide"))


@pytest.mark.slow
def test_per_seed_models_resume_only_with_the_same_gans_in_order_and_one_gan_is_not_two(
        tmp_path, tiny_overrides, monkeypatch):
    from gantransfer.transfer_learning import strategies

    keras.utils.set_random_seed(0)
    first, second = (build_discriminator(16, 1, width=0.125) for _ in range(2))
    config = load_config(None, [*tiny_overrides, *FAST, "transfer.seeds=2",
                                "transfer.strategies=gan-frozen"])
    with pytest.raises(ConfigError, match="seeds 0 and 1 were given the same GAN"):
        experiment.transfer(config, tmp_path / "same", discriminator=[first, first])
    real = strategies.RUNNERS["gan-frozen"]

    def crash_at_seed_1(context):
        if context.split.seed == 1:
            raise KeyboardInterrupt
        return real(context)

    monkeypatch.setitem(strategies.RUNNERS, "gan-frozen", crash_at_seed_1)
    with pytest.raises(KeyboardInterrupt):
        experiment.transfer(config, tmp_path / "run", discriminator=[first, second], verbose=False)
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="with another discriminator"):  # the GANs swapped
        experiment.transfer(config, tmp_path / "run", discriminator=[second, first], resume=True)
    result = experiment.transfer(config, tmp_path / "run", discriminator=[first, second],
                                 resume=True, verbose=False)
    assert [r.seed for r in result.results] == [0, 1]
    # GANs given as models, with no run folder: the verdict still says whose variation it holds.
    assert "each seed's GAN strategies start from its own GAN" in (
        tmp_path / "run/report.md").read_text()
    assert json.loads((tmp_path / "run/run.json").read_text())["discriminator"] == [None, None]
