"""Every README command outside the benchmark chain runs (see test_readme.py for the rules)."""

import json
import os

import pytest

from test_readme import (MULTI_WORKER_COMMAND, RUN_AS, bash_commands, in_benchmark_chain,
                         run_commands)


@pytest.mark.slow
def test_every_bash_command_outside_the_benchmarks_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ran = run_commands(tmp_path, benchmarks=False)
    others = [c for c in bash_commands() if not in_benchmark_chain(c)]
    left_out = [c for c in others if RUN_AS.get(c, (c,))[0] is None]
    # the two test suites, and the two-machine command (test_multi_worker.py runs two workers)
    assert len(left_out) == 3 and MULTI_WORKER_COMMAND in left_out
    assert sorted(ran) == sorted(c for c in others if c not in left_out)
    assert (tmp_path / "outputs/fmnist-pictures/filters.png").is_file()
    assert (tmp_path / "walk.png").is_file() and (tmp_path / "my-samples").is_dir()
    assert (tmp_path / "outputs/fmnist-gan/gan_metrics.json").is_file()
    assert list(tmp_path.glob("outputs/digits-compare-*/report.html"))  # the quick start
    assert (tmp_path / "outputs/cmp/models/gan-finetune_lpc-10_seed-0.keras").is_file()
    assert (tmp_path / "outputs/cmp-attack/adversarial_examples.png").is_file()
    assert "## Robustness" in (tmp_path / "outputs/digits-adversarial/report.md").read_text()
    # The JAX examples ran on JAX, and the GAN run started there finished on the backend of a plain
    # `gantransfer` here: TensorFlow where it is installed (the README's case), else JAX.
    jax_compare = json.loads((tmp_path / "outputs/digits-compare-jax/run.json").read_text())
    assert jax_compare["machine"]["backend"] == "jax"
    assert "trained on Keras's jax backend" in (
        tmp_path / "outputs/digits-compare-jax/report.md").read_text()
    gan = json.loads((tmp_path / "outputs/digits-gan-jax/run.json").read_text())
    assert gan["machine"]["backend"] == os.environ["KERAS_BACKEND"] and gan["epochs"] == 3
