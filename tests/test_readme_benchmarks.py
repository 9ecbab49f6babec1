"""Every README benchmark command runs, with the GAN runs it reads (see test_readme.py)."""

import pytest

from test_readme import bash_commands, in_benchmark_chain, run_commands, runnable


@pytest.mark.slow
def test_every_benchmark_command_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ran = run_commands(tmp_path, benchmarks=True)
    assert sorted(ran) == sorted(c for c in bash_commands() if in_benchmark_chain(c) and runnable(c))
    assert (tmp_path / "outputs/rotation-benchmark/transfer-rotation/results.csv").is_file()
    assert (tmp_path / "outputs/fashion-mnist-benchmark/report.md").is_file()
    assert (tmp_path / "outputs/robustness-benchmark/robustness.png").is_file()
