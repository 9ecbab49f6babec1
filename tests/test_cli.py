"""The command line through click's CliRunner: help, version, a tiny run, and bad input."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import gantransfer
from gantransfer.cli import cli

TINY = ["--set", "gan.width=0.125", "--set", "gan.latent_dim=8", "--set", "gan.kernel_size=3",
        "--set", "train.sample_images=4", "--batch-size", "16", "--image-size", "32", "--quiet"]


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def npz(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (40, 16, 16), dtype="uint8")
    path = tmp_path / "images.npz"
    np.savez(path, x=x)
    return path


def test_version(runner):
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert gantransfer.__version__ in result.output


@pytest.mark.parametrize("command", [[], ["train-gan"], ["sample"], ["evaluate-gan"], ["visualize"]])
def test_help_has_an_example(runner, command):
    result = runner.invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output
    assert f"gantransfer {command[0] if command else 'train-gan'}" in result.output


def test_train_gan_tiny_run_then_resume(runner, tmp_path, npz):
    out = tmp_path / "run"
    result = runner.invoke(cli, ["train-gan", "--dataset", str(npz), "--epochs", "1",
                                 "--output-dir", str(out), *TINY])
    assert result.exit_code == 0, result.output
    assert f"run folder: {out}" in result.output
    assert (out / "generator.keras").is_file() and (out / "samples/epoch_001.png").is_file()
    result = runner.invoke(cli, ["train-gan", "--output-dir", str(out), "--resume", "--epochs", "2",
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    assert (out / "checkpoints/epoch_002.npz").is_file()
    assert "2 epochs in 2 sessions (epochs 1-1, 2-2)" in result.output  # the whole run's figures
    # The resolved config repeats the run: the dataset and the tiny widths came back from it.
    config = gantransfer.load_config(out / "config.yaml")
    assert (config.data.dataset, config.gan.width, config.train.epochs) == (str(npz), 0.125, 2)


def test_train_gan_with_the_probe_names_the_best_probe_discriminator(runner, tmp_path):
    rng = np.random.default_rng(0)
    labeled = tmp_path / "labeled.npz"
    np.savez(labeled, x=rng.integers(0, 256, (40, 16, 16), dtype="uint8"), y=np.arange(40) % 2)
    out = tmp_path / "run"
    result = runner.invoke(cli, ["train-gan", "--dataset", str(labeled), "--epochs", "1",
                                 "--output-dir", str(out), "--set", "train.probe_every=1",
                                 "--set", "train.probe_labels_per_class=5", *TINY])
    assert result.exit_code == 0, result.output
    assert f"{out / 'discriminator_best_probe.keras'} (epoch 1, probe accuracy " in result.output


def _bad(runner, args, expected, tmp_path=None):
    result = runner.invoke(cli, args)
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    last = result.output.strip().splitlines()[-1]
    assert expected in last, result.output
    return result


@pytest.mark.parametrize("args, expected", [
    (["train-gan", "--dataset", "fashon_mnist"], "expected one of cifar10, cifar100, digits"),
    (["train-gan", "--dataset", "/no/such/folder"], "/no/such/folder"),
    (["train-gan", "--config", "/no/such.yaml"], "does not exist"),
    (["train-gan", "--set", "gan.latnt_dim=4"], "did you mean 'latent_dim'"),
    (["train-gan", "--set", "train.epochs=many"], "train.epochs: received 'many'"),
    (["train-gan", "--set", "oops"], "expected section.key=value"),
    (["train-gan", "--image-size", "30"], "data.image_size: received 30"),
    (["train-gan", "--epochs", "0"], "train.epochs: received 0"),
    (["train-gan", "--epochs", "abc"], "'abc' is not a valid integer"),
    (["train-gan", "--batch-size", "0"], "train.batch_size: received 0"),
    (["train-gan", "--resume"], "--resume needs --output-dir"),
    (["train-gan", "--no-such-flag"], "No such option '--no-such-flag'"),
])
def test_bad_input_is_one_clear_line(runner, args, expected):
    _bad(runner, args, expected)


@pytest.mark.parametrize("args, expected", [
    (["sample", "/no/such/run"], "Invalid value for 'RUN_DIR|GENERATOR_FILE': Path "
                                 "'/no/such/run' does not exist. See 'gantransfer sample --help'."),
    (["train-gan", "--no-such-flag"], "No such option '--no-such-flag'. See 'gantransfer "
                                      "train-gan --help'."),
    (["transfer", "--head", "wide"], "Invalid value for '--head': 'wide' is not one of 'auto', "
                                     "'gap', 'flatten', 'pooled'. See 'gantransfer transfer "
                                     "--help'."),
    (["attack"], "Missing argument 'MODEL.keras'. See 'gantransfer attack --help'."),
    (["tarin-gan"], "No such command 'tarin-gan'. Did you mean 'train-gan'? See 'gantransfer "
                    "--help'."),
])
def test_a_malformed_command_line_is_one_line_with_status_2(runner, args, expected):
    result = runner.invoke(cli, args, prog_name="gantransfer")
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"Error: {expected}"]


def test_gantransfer_alone_shows_its_help(runner):
    result = runner.invoke(cli, [], prog_name="gantransfer")
    assert result.output.startswith("Usage: gantransfer [OPTIONS] COMMAND")
    assert "Commands:" in result.output and "Error" not in result.output


def test_bad_config_file(runner, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("gan:\n  width: wide\n")
    _bad(runner, ["train-gan", "--config", str(path)], "gan.width: received 'wide'")


def test_an_unsupported_backend_is_one_clear_line(runner, tmp_path, npz, monkeypatch):
    import keras

    monkeypatch.setattr(keras.config, "backend", lambda: "torch")
    _bad(runner, ["train-gan", "--dataset", str(npz), "--epochs", "1",
                  "--output-dir", str(tmp_path / "run"), *TINY],
         "received KERAS_BACKEND='torch'. Set KERAS_BACKEND=jax or tensorflow")


def test_resume_of_a_folder_that_is_not_a_run(runner, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    _bad(runner, ["train-gan", "--resume", "--output-dir", str(tmp_path)], "is not a run folder")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_existing_folder_is_kept(runner, tmp_path, npz):
    (tmp_path / "notes.txt").write_text("mine")
    _bad(runner, ["train-gan", "--dataset", str(npz), "--output-dir", str(tmp_path)],
         "already exists; pass --resume")
    _bad(runner, ["train-gan", "--dataset", str(npz), "--output-dir", str(tmp_path), "--overwrite"],
         "does not look like a run folder")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_resume_and_overwrite_together(runner, tmp_path):
    (tmp_path / "config.yaml").write_text("{}\n")
    _bad(runner, ["train-gan", "--output-dir", str(tmp_path), "--resume", "--overwrite"],
         "contradict each other")


def test_empty_image_folder(runner, tmp_path):
    (tmp_path / "empty").mkdir()
    _bad(runner, ["train-gan", "--dataset", str(tmp_path / "empty"),
                           "--output-dir", str(tmp_path / "run")], "empty")
    assert not (tmp_path / "run").exists()  # bad data leaves no empty run folder behind


def test_npz_with_mismatched_labels(runner, tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.zeros((5, 8, 8), "uint8"), y=np.zeros(4, "int64"))
    _bad(runner, ["train-gan", "--dataset", str(path), "--output-dir", str(tmp_path / "run")], "5")


@pytest.mark.parametrize("command", ["transfer", "compare"])
def test_transfer_and_compare_help_have_examples(runner, command):
    result = runner.invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and f"gantransfer {command}" in result.output


FAST_TRANSFER = ["--set", "transfer.max_epochs=3", "--set", "transfer.patience=1",
                 "--set", "transfer.learning_rates=0.01", "--set", "transfer.probe_c=0.1",
                 "--set", "transfer.bn_images=100", "--set", "transfer.cv_folds=2",
                 "--set", "gan.width=0.125",
                 "--set", "gan.kernel_size=3", "--quiet"]


@pytest.mark.slow
def test_compare_end_to_end_then_transfer_from_its_gan(runner, tmp_path):
    out = tmp_path / "cmp"
    result = runner.invoke(cli, ["compare", "--epochs", "1", "--labels-per-class", "3",
                                 "--seeds", "1", "--strategies",
                                 "scratch,gan-frozen,gan-linear-probe,random-linear-probe",
                                 "--output-dir", str(out), "--set", "transfer.report_pictures=true",
                                 "--set", "train.metrics_images=100", *FAST_TRANSFER])
    assert result.exit_code == 0, result.output
    # The answer, printed last: the headline the report opens with, one sentence per budget.
    verdict = json.loads((out / "results.json").read_text())["verdict"]
    printed = result.output.split("verdict (paired 95% intervals over seeds; every comparison is "
                                  "in the report):\n", 1)[1].splitlines()
    assert printed == [f"  {verdict[0]}"] and printed[0].startswith("  At 3 labels/class ")
    for name in ("filters.png", "feature_maps.png", "gradcam.png", "embedding.png"):
        assert (out / "pictures" / name).is_file(), name
    markdown = (out / "report.md").read_text()
    assert "## What the networks learned" in markdown and "Grad-CAM of gan-frozen" in markdown
    assert "FID:" in markdown and "classifier, 200 real vs 200 generated" in markdown
    assert (out / "gan/gan_metrics.json").is_file()
    for name in ("config.yaml", "gan/discriminator.keras", "gan/samples/epoch_001.png",
                 "results.csv", "results.json", "report.md", "report.html", "run.json",
                 "models/gan-frozen_lpc-3_seed-0.keras"):
        assert (out / name).exists(), name
    results = json.loads((out / "results.json").read_text())["results"]
    assert sorted(r["strategy"] for r in results) == ["gan-frozen", "gan-linear-probe",
                                                      "random-linear-probe", "scratch"]
    assert all(0 <= r["test_accuracy"] <= 1 for r in results)
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html  # the GAN's sample grid and figures are embedded
    import keras

    model = keras.saving.load_model(out / "models/gan-frozen_lpc-3_seed-0.keras")
    assert model.output_shape == (None, 10)

    again = tmp_path / "tr"
    result = runner.invoke(cli, ["transfer", "--gan-run", str(out / "gan"), "--dataset", "digits",
                                 "--strategies", "gan-frozen", "--labels-per-class", "3",
                                 "--seeds", "1", "--output-dir", str(again), *FAST_TRANSFER])
    assert result.exit_code == 0, result.output
    assert (again / "report.html").is_file()


@pytest.mark.parametrize("args, expected", [
    (["transfer", "--strategies", "scratch,gan-frozn"], "transfer.strategies: received 'gan-frozn'"),
    (["transfer", "--strategies", "gan-frozen"], "need a trained GAN: pass --gan-run"),
    (["transfer", "--labels-per-class", "ten"], "transfer.labels_per_class: received 'ten'"),
    (["transfer", "--labels-per-class", "10,[5"],
     "transfer.labels_per_class: cannot read '[5' in a comma-separated list"),
    (["transfer", "--set", "transfer.strategies=*"],
     "transfer.strategies: cannot read '*' in a comma-separated list"),
    (["transfer", "--seeds", "0"], "transfer.seeds: received 0"),
    (["transfer", "--gan-run", "/no/such/run"], "does not exist"),
    (["transfer", "--backbone-alpha", "-1"], "transfer.backbone_alpha: received -1.0"),
    (["compare", "--config", "nope"], "preset name (cifar10, digits, fashion_mnist)"),
    (["compare", "--dataset", "fashon_mnist"], "expected one of cifar10, cifar100, digits"),
])
def test_transfer_and_compare_bad_input(runner, args, expected):
    _bad(runner, args, expected)


def test_transfer_needs_labels(runner, tmp_path):
    path = tmp_path / "unlabeled.npz"
    np.savez(path, x=np.zeros((30, 8, 8), "uint8"))
    _bad(runner, ["transfer", "--dataset", str(path), "--strategies", "pixels-linear",
                  "--output-dir", str(tmp_path / "run")], "has no labels")


def test_transfer_and_gan_both_given(runner, tmp_path):
    (tmp_path / "d.keras").write_bytes(b"x")
    _bad(runner, ["transfer", "--gan-run", str(tmp_path), "--discriminator",
                  str(tmp_path / "d.keras")], "not both")


def test_resume_past_a_garbled_history_line(runner, tmp_path, npz):
    out = tmp_path / "run"
    result = runner.invoke(cli, ["train-gan", "--dataset", str(npz), "--epochs", "1",
                                 "--output-dir", str(out), *TINY])
    assert result.exit_code == 0, result.output
    with (out / "history.csv").open("a") as handle:  # what a kill in mid-line can leave
        handle.write("\x00\x00garbled,,\n1,0.5\n")
    result = runner.invoke(cli, ["train-gan", "--output-dir", str(out), "--resume", "--epochs", "2",
                                 "--quiet"])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    lines = (out / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines] == ["epoch", "0", "1"]
    assert len({len(line.split(",")) for line in lines}) == 1


def test_transfer_from_a_gan_run_with_a_corrupt_manifest(runner, tmp_path, npz):
    gan = tmp_path / "gan"
    result = runner.invoke(cli, ["train-gan", "--dataset", str(npz), "--epochs", "1",
                                 "--output-dir", str(gan), *TINY])
    assert result.exit_code == 0, result.output
    (gan / "run.json").write_text('{"epochs": 1, "dataset": ')  # cut short
    out = tmp_path / "transfer"
    result = _bad(runner, ["transfer", "--gan-run", str(gan), "--dataset", "digits",
                           "--strategies", "gan-linear-probe", "--output-dir", str(out)],
                  "is not readable JSON")
    assert str(gan / "run.json") in result.output
    assert not out.exists()  # nothing half-made is left behind


CHANGES = [
    (["--set", "gan.learning_rate=1e-3"], "gan.learning_rate was 0.0002 in this run and is 0.001 now"),
    (["--set", "gan.width=0.25"], "gan.width was 0.125 in this run and is 0.25 now"),
    (["--set", "gan.rotation_weight=1"], "gan.rotation_weight was 0.0 in this run and is 1.0 now"),
    (["--seed", "1"], "train.seed was 0 in this run and is 1 now"),
    (["--batch-size", "8"], "train.batch_size was 16 in this run and is 8 now"),
    (["--image-size", "16"], "data.image_size was 32 in this run and is 16 now"),
    (["--dataset", "digits"], "data.dataset was"),
]


def test_resume_refuses_a_changed_setting_and_keeps_the_run_intact(runner, tmp_path, npz):
    out = tmp_path / "run"
    result = runner.invoke(cli, ["train-gan", "--dataset", str(npz), "--epochs", "1",
                                 "--output-dir", str(out), *TINY])
    assert result.exit_code == 0, result.output
    config_before = (out / "config.yaml").read_text()
    for change, key in CHANGES:
        refused = _bad(runner, ["train-gan", "--output-dir", str(out), "--resume", "--epochs", "2",
                                *change], key)
        assert "may change only train.epochs" in refused.output
        assert (out / "config.yaml").read_text() == config_before  # it still describes the run
        assert not (out / "checkpoints/epoch_002.npz").exists()
    # A plain resume still works afterwards, and may change the epochs and the logging.
    result = runner.invoke(cli, ["train-gan", "--output-dir", str(out), "--resume", "--epochs", "2",
                                 "--quiet", "--set", "train.keep_checkpoints=0"])
    assert result.exit_code == 0, result.output
    assert (out / "checkpoints/epoch_002.npz").is_file()
    assert gantransfer.load_config(out / "config.yaml").train.epochs == 2


@pytest.mark.parametrize("args, expected", [
    (["--backbone-weights", "no/such/weights.h5", "--strategies", "scratch,imagenet-frozen"],
     "weights file no/such/weights.h5 does not exist"),
    (["--labels-per-class", "1000", "--strategies", "scratch"], "fewer than labels_per_class=1000"),
    (["--dataset", "UNLABELED", "--strategies", "scratch"], "has no labels"),
])
@pytest.mark.parametrize("command", ["transfer", "compare"])
def test_bad_transfer_input_is_refused_before_anything_is_made(runner, tmp_path, command, args,
                                                               expected):
    flat = tmp_path / "flat"
    flat.mkdir()
    from PIL import Image

    for i in range(12):  # an unlabeled folder: images straight inside it
        Image.fromarray(np.full((8, 8), 20 * i, "uint8")).save(flat / f"image_{i}.png")
    args = [str(flat) if a == "UNLABELED" else a for a in args]
    out = tmp_path / "run"
    _bad(runner, [command, *args, "--output-dir", str(out), "--quiet"], expected)
    assert not out.exists()  # no half run folder: the rerun is not refused


def test_a_colour_folder_without_a_config_stays_in_colour(runner, tmp_path):
    import yaml
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype="uint8")).save(photos / f"{i}.png")
    out = tmp_path / "run"
    result = runner.invoke(cli, ["train-gan", "--dataset", str(photos), "--epochs", "1",
                                 "--output-dir", str(out), *TINY])
    assert result.exit_code == 0, result.output
    # The default preset's grey is the digits': the folder keeps its own three channels.
    assert yaml.safe_load((out / "config.yaml").read_text())["data"]["channels"] is None
    assert Image.open(out / "samples/epoch_001.png").mode == "RGB"
    # An explicit choice still wins.
    result = runner.invoke(cli, ["train-gan", "--dataset", str(photos), "--epochs", "1",
                                 "--output-dir", str(tmp_path / "grey"), "--set",
                                 "data.channels=1", *TINY])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "grey/samples/epoch_001.png").mode == "L"


@pytest.mark.parametrize("flags, alpha", [
    (["--backbone", "resnet50"], 1.0),  # the preset's MobileNet width is not ResNet's
    (["--backbone", "mobilenet_v2", "--backbone-alpha", "0.35"], 0.35),
    (["--backbone", "mobilenet"], 0.25),  # the preset's own backbone keeps its width
    (["--backbone", "MobileNet"], 0.25),  # however it is spelled
    (["--backbone", "efficientnet_b0", "--set", "transfer.backbone_alpha=0.5"], 0.5),
])
def test_another_backbone_runs_at_full_width_unless_told(runner, tmp_path, flags, alpha):
    import yaml

    out = tmp_path / "run"
    result = runner.invoke(cli, ["transfer", "--dataset", "digits", "--strategies", "pixels-linear",
                                 "--labels-per-class", "5", "--seeds", "1", *flags,
                                 "--output-dir", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((out / "config.yaml").read_text())["transfer"]["backbone_alpha"] == alpha


def test_regularisation_flags_reach_the_config(runner, tmp_path):
    import yaml

    out = tmp_path / "run"
    result = runner.invoke(cli, ["transfer", "--dataset", "digits", "--strategies", "pixels-linear",
                                 "--labels-per-class", "5", "--seeds", "1", "--dropout", "0.2",
                                 "--l2", "0.001", "--trunk-dropout", "0.1", "--trunk-l2", "0.01",
                                 "--output-dir", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    transfer = yaml.safe_load((out / "config.yaml").read_text())["transfer"]
    assert (transfer["dropout"], transfer["l2"], transfer["trunk_dropout"],
            transfer["trunk_l2"]) == (0.2, 0.001, 0.1, 0.01)


def test_several_workers_on_a_gpu_are_refused_before_anything_is_made(tmp_path, monkeypatch):
    from gantransfer import backend

    monkeypatch.setattr(backend, "accelerators", lambda: ["/device:GPU:0"])
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["transfer", "--strategies", "scratch,pixels-linear",
                                      "--workers", "2", "--output-dir", str(out), "--quiet"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: transfer.workers=2: several processes train on the CPU, and this run trains on its "
        "devices (a GPU, or train.distribute), which one process uses fully; set "
        "transfer.workers=auto or 1"]
    assert not out.exists()
