"""The layering contract in pyproject.toml holds: no module imports a layer above its own."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _lint_imports() -> str:
    found = Path(sys.executable).parent / "lint-imports"
    return str(found) if found.exists() else (shutil.which("lint-imports") or "")


def test_the_layering_contract_is_kept():
    command = _lint_imports()
    if not command:
        pytest.fail("lint-imports is missing: pip install -e '.[test]' installs import-linter")
    result = subprocess.run([command, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
    assert "1 kept, 0 broken" in result.stdout


def test_the_contract_catches_a_backward_import(tmp_path):
    # A copy of the package with one upward import added must break the contract.
    shutil.copytree(ROOT / "gantransfer", tmp_path / "gantransfer")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    config = tmp_path / "gantransfer" / "config.py"
    config.write_text(config.read_text() + "\nfrom gantransfer.workflows import experiment  # noqa\n")
    result = subprocess.run([_lint_imports(), "--no-cache"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env={"PYTHONPATH": str(tmp_path),
                                                         "PATH": "/usr/bin:/bin"})
    assert result.returncode != 0
    assert "gantransfer.config -> gantransfer.workflows" in result.stdout
