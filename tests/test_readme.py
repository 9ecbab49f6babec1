"""The README's end-to-end script runs exactly as written."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_script() -> str:
    text = README.read_text()
    match = re.search(r"<!-- readme-script -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README.md lost its <!-- readme-script --> block"
    return match.group(1)


def test_the_script_is_about_fifteen_lines():
    lines = [line for line in readme_script().splitlines() if line.strip()]
    assert 10 <= len(lines) <= 20


@pytest.mark.slow
def test_readme_script_runs(tmp_path):
    result = subprocess.run([sys.executable, "-c", readme_script()], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for strategy in ("scratch", "gan-frozen", "gan-linear-probe", "random-linear-probe"):
        assert re.search(rf"{strategy}: 0\.\d{{3}}", out), out
    assert "(16, 32, 32, 1)" in out and "'block1_conv'" in out and "['head_dense']" in out
    assert "conv: 16" in out
    assert (tmp_path / "outputs/readme-compare/report.html").is_file()
