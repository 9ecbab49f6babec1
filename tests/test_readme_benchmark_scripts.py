"""Every README benchmark script that stands alone (reads no GAN run) runs (see test_readme.py).

Apart from test_readme_benchmarks.py, so that the two run on both pytest-xdist workers at once.
"""

import pytest

from test_readme import benchmark_commands, run_commands


@pytest.mark.slow
def test_every_standalone_benchmark_script_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ran = run_commands(tmp_path, benchmarks=True, standalone=True)
    assert sorted(ran) == sorted(benchmark_commands(standalone=True))
    assert {"gpu_check.py", "bench_jax_cache.py", "bench_attack.py"} <= {
        part.rsplit("/", 1)[-1] for c in ran for part in c.split() if part.endswith(".py")}
