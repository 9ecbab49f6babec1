"""Every README benchmark command that reads the GAN runs of the chain runs, with those runs (see
test_readme.py); test_readme_benchmark_scripts.py runs the ones that stand alone."""

import pytest

from test_readme import RUN_AS, _run, benchmark_commands, run_commands


@pytest.mark.slow
def test_every_benchmark_command_on_the_gan_runs_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ran = run_commands(tmp_path, benchmarks=True, standalone=False)
    assert sorted(ran) == sorted(benchmark_commands(standalone=False))
    assert any("bench_rotation" in c for c in ran) and any("train-gan" in c for c in ran)
    assert (tmp_path / "outputs/rotation-benchmark/transfer-rotation/results.csv").is_file()
    assert (tmp_path / "outputs/fashion-mnist-benchmark/report.md").is_file()
    assert (tmp_path / "outputs/robustness-benchmark/robustness.png").is_file()

    # Stopped during its last stage, the script continues with --resume: its comparison is
    # complete, so compare has nothing to add, and the script goes on to the test shifts.
    script, _why = RUN_AS["bash benchmarks/bench_fashion_mnist.sh outputs/fashion-mnist-benchmark"]
    printed = _run(f"{script} --resume", tmp_path)
    assert "is complete: nothing to resume" in printed
    assert "is complete: on to its test shifts" in printed and "models; predictions took" in printed
