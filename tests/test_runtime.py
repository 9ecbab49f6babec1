"""How a run uses the machine: mixed precision, XLA and the record of both (gantransfer.runtime)."""

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from gantransfer import runtime
from gantransfer.cli import cli
from gantransfer.config import load_config
from gantransfer.errors import ConfigError
from gantransfer.gan.train import build_dcgan, train_gan
from gantransfer.runtime import Runtime
from gantransfer.workflows.targets import target_data

TINY = ["gan.width=0.125", "gan.latent_dim=8", "gan.kernel_size=3", "train.verbose=0",
        "train.sample_images=4", "train.batch_size=32"]
TINY_CLI = ["--set", "gan.width=0.125", "--set", "gan.latent_dim=8", "--set", "gan.kernel_size=3",
            "--set", "train.sample_images=4", "--set", "train.batch_size=32", "--quiet"]


def _digits(n=64, side=16, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, side, side, 1)).astype("float32")


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_a_mixed_precision_gan_computes_in_16_bits_and_gives_float32_losses_and_images(precision):
    with Runtime(precision=precision).activate():
        gan = build_dcgan(load_config(None, TINY), 16, 1)
        history = gan.fit(_digits(), batch_size=32, epochs=2, verbose=0).history
        images = gan.generator(np.zeros((2, 8), "float32"))
        logits = gan.discriminator(images)
    half = precision.removeprefix("mixed_")
    conv = gan.discriminator.get_layer("block1_conv")
    assert conv.compute_dtype == half and conv.variable_dtype == "float32"
    assert all(np.isfinite(v).all() for v in history.values())
    assert images.dtype == "float32" and logits.dtype == "float32"
    # the policy is the caller's again once the run is over
    assert keras.config.dtype_policy().name == "float32"


def test_float16_scales_both_optimizers_losses_and_skips_a_step_that_overflows():
    with Runtime(precision="mixed_float16").activate():
        gan = build_dcgan(load_config(None, TINY), 16, 1)
        optimizers = {"discriminator": gan.d_optimizer, "generator": gan.g_optimizer}
        assert all(isinstance(o, keras.optimizers.LossScaleOptimizer) for o in optimizers.values())
        # A scale so large that every scaled float16 gradient overflows: the step must be skipped,
        # and each optimizer must halve its own scale (so each saw its own scaled loss).
        for optimizer in optimizers.values():
            optimizer.dynamic_scale.assign(2.0 ** 60)
        weights = [np.asarray(w) for w in gan.discriminator.trainable_weights +
                   gan.generator.trainable_weights]
        gan.fit(_digits(32), batch_size=32, epochs=1, verbose=0)
        assert {name: float(o.dynamic_scale) for name, o in optimizers.items()} == \
            {"discriminator": 2.0 ** 59, "generator": 2.0 ** 59}
        after = [np.asarray(w) for w in gan.discriminator.trainable_weights +
                 gan.generator.trainable_weights]
        assert all(np.array_equal(a, b) for a, b in zip(weights, after))
        # With the default scale, the next steps train: the weights move, and stay finite.
        for optimizer in optimizers.values():
            optimizer.dynamic_scale.assign(2.0 ** 10)
        gan.fit(_digits(64), batch_size=32, epochs=1, verbose=0)
        moved = [np.asarray(w) for w in gan.discriminator.trainable_weights]
        assert not all(np.array_equal(a, b) for a, b in zip(weights, moved))
        assert all(np.isfinite(w).all() for w in moved)


def test_float16_restarts_of_a_head_keep_a_loss_scale_and_train_finite_weights():
    """Cross-validation trains one compiled model again and again: each restart must put the
    optimizer back as built, its loss scale included (a zero scale makes every weight NaN)."""
    from gantransfer.transfer_learning.classifiers import fit_cross_validated

    def build():
        return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                                 keras.layers.Dense(3), keras.layers.Activation("linear",
                                                                               dtype="float32")])

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 8)
    x = (rng.normal(size=(24, 6)) + 2 * y[:, None]).astype("float32")
    with Runtime(precision="mixed_float16").activate():
        outcome = fit_cross_validated(build, (x, y), folds=2, learning_rates=[1e-2, 3e-3],
                                      max_epochs=20, patience=5, batch_size=8, seed=0)
        optimizer = outcome.model.optimizer
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        assert float(optimizer.dynamic_scale) > 1
        assert all(np.isfinite(np.asarray(w)).all() for w in outcome.model.get_weights())
        # The refit, the fifth fit of the one model, learned its images (chance is 1/3).
        predicted = np.argmax(outcome.model.predict(x, verbose=0), axis=-1)
        assert np.mean(predicted == y) > 0.6


def test_a_run_resumes_in_another_precision_and_its_files_stay_float32(tmp_path):
    run, images = tmp_path / "run", tmp_path / "images.npz"
    np.savez(images, x=np.random.default_rng(0).integers(0, 256, (64, 16, 16, 1), dtype=np.uint8))
    data = ["--dataset", str(images), "--image-size", "16", "--output-dir", str(run)]
    first = CliRunner().invoke(cli, ["train-gan", *data, "--epochs", "1", *TINY_CLI,
                                     "--mixed-precision", "bfloat16", "--no-jit-compile"])
    assert first.exit_code == 0, first.output
    machine = json.loads((run / "run.json").read_text())["machine"]
    assert (machine["precision"], machine["jit_compile"], machine["xla"]) == \
        ("mixed_bfloat16", False, False)
    # float16 now, a setting a resume may change; the Adam moments carry over, the loss scale
    # (which the float32 run never had) starts afresh.
    second = CliRunner().invoke(cli, ["train-gan", "--output-dir", str(run), "--resume",
                                      "--epochs", "2", "--quiet", "--mixed-precision"])
    assert second.exit_code == 0, second.output
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["machine"]["precision"] == "mixed_float16"
    assert [s["epochs"] for s in manifest["sessions"]] == [[1, 1], [2, 2]]
    for name in ("generator.keras", "discriminator.keras"):
        model = keras.saving.load_model(run / name)
        assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}, name
    # and back to float32, past the float16 checkpoint's loss scales
    third = CliRunner().invoke(cli, ["train-gan", "--output-dir", str(run), "--resume",
                                     "--epochs", "3", "--quiet", "--set", "train.precision=float32"])
    assert third.exit_code == 0, third.output
    assert json.loads((run / "run.json").read_text())["machine"]["precision"] == "float32"


def test_a_transfer_in_mixed_precision_saves_float32_classifiers_that_predict_as_trained(tmp_path):
    import gantransfer as gt

    config = gt.load_config("digits", [
        "transfer.strategies=scratch,gan-frozen,gan-linear-probe", "transfer.labels_per_class=10",
        "transfer.seeds=1", "transfer.max_epochs=3", "transfer.patience=1", "transfer.cv_folds=2",
        "transfer.learning_rates=0.01", "transfer.bn_images=200", "transfer.gan_metrics=false",
        "train.precision=mixed_bfloat16", "data.image_size=16"])
    discriminator = build_dcgan(load_config(None, TINY), 16, 1).discriminator
    result = gt.transfer(config, tmp_path / "run", discriminator=discriminator, verbose=False)
    assert keras.config.dtype_policy().name == "float32"
    ok = [r for r in result.results if r.status == "ok"]
    assert len(ok) == 3
    report = (tmp_path / "run/report.md").read_text()
    assert "mixed_bfloat16" in report
    test = target_data(config, discriminator)[0].test
    x_test, y_test = test.load(np.arange(len(test))), test.y
    for record in ok:
        model = keras.saving.load_model(record.model_file)
        policies = {layer.dtype_policy.name for layer in model._flatten_layers()}
        assert policies == {"float32"}, (record.strategy, policies)
        # the float32 file scores what the bfloat16 model scored, to within a few images
        accuracy = np.mean(np.argmax(model.predict(x_test, verbose=0), -1) == y_test)
        assert record.test_accuracy > 0.3, record.strategy
        assert abs(accuracy - record.test_accuracy) <= 0.02, (record.strategy, accuracy)


def test_runtime_settings_are_checked_with_one_clear_line():
    for key, value, expected in [("precision", "float16", "float32 or mixed_float16 or mixed_bfloat16"),
                                 ("jit_compile", "sometimes", "true, false or auto"),
                                 ("distribute", "cluster", "none or mirrored or multi-worker")]:
        with pytest.raises(ConfigError) as caught:
            load_config(None, [f"train.{key}={value}"])
        assert str(caught.value) == f"train.{key}: received {value!r}, expected {expected}"


def test_the_cli_flags_set_the_runtime_and_set_wins_over_them(tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train-gan", "--dataset", "digits", "--image-size", "16",
                                      "--epochs", "1", "--output-dir", str(run), *TINY_CLI,
                                      "--mixed-precision", "bfloat16", "--jit-compile",
                                      "--set", "train.precision=float32"])
    assert result.exit_code == 0, result.output
    saved = load_config(run / "config.yaml").train
    assert (saved.precision, saved.jit_compile, saved.distribute) == ("float32", True, "none")


def test_a_runtime_restores_the_callers_policy_even_when_the_run_fails():
    keras.config.set_dtype_policy("float32")
    with pytest.raises(RuntimeError):
        with Runtime(precision="mixed_float16").activate():
            assert runtime.current().precision == "mixed_float16"
            raise RuntimeError("a failed run")
    assert keras.config.dtype_policy().name == "float32"
    assert runtime.current() == Runtime()


def test_the_fid_feature_extractor_is_float32_in_a_mixed_precision_run():
    from gantransfer.gan.extractors import train_feature_extractor

    images = np.random.default_rng(0).integers(0, 256, (32, 16, 16, 1)).astype("uint8")
    with Runtime(precision="mixed_bfloat16").activate():
        extractor, _ = train_feature_extractor(images, np.arange(32) % 2, 2, epochs=1)
        assert keras.layers.Dense(1).dtype_policy.name == "mixed_bfloat16"  # the run's, around it
    assert {layer.dtype_policy.name for layer in extractor.layers} == {"float32"}


def _environment(names):
    import os

    return {name: os.environ.get(name) for name in names}


def test_worker_processes_start_on_one_thread_and_leave_the_callers_environment_as_it_was():
    from gantransfer import backend

    settings = backend.one_thread_environment()
    before = _environment(settings)
    with runtime.WorkerPool(2, _environment, (list(settings),)) as pool:
        seen = [future.result() for future in pool.submit_all(_environment, [list(settings)] * 2)]
    assert seen == [settings, settings]
    assert _environment(settings) == before


def test_a_script_without_a_main_guard_is_not_run_again_in_each_worker(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text("import os\n"
                      "from gantransfer.runtime import WorkerPool\n"
                      "print('the script ran', flush=True)\n"
                      "with WorkerPool(2, os.write, (1, b'a worker started\\n')) as pool:\n"
                      "    futures = pool.submit_all(abs, [-1, -2, -3])\n"
                      "    print(sorted(future.result() for future in futures), flush=True)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines.count("the script ran") == 1 and "[1, 2, 3]" in lines
    assert 1 <= lines.count("a worker started") <= 2


def test_closing_a_pool_ends_work_in_progress_and_a_dead_worker_breaks_the_pool():
    import os
    import time
    from concurrent.futures.process import BrokenProcessPool

    with runtime.WorkerPool(1, len, ((),)) as pool:
        (long,) = pool.submit_all(time.sleep, [600])
        while not long.running():
            time.sleep(0.1)
        processes = list(pool._pool._processes.values())
    assert processes and not any(process.is_alive() for process in processes)
    with runtime.WorkerPool(1, len, ((),)) as pool:
        (dying,) = pool.submit_all(os._exit, [3])
        with pytest.raises(BrokenProcessPool):
            dying.result(timeout=300)
