"""The examples in docstrings run and give what they show."""

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

def all_modules() -> list[str]:
    """Every module of the package, found by walking it: no hand-kept list to fall behind."""
    import gantransfer

    return sorted(info.name for info in pkgutil.walk_packages(gantransfer.__path__, "gantransfer.")
                  if info.name != "gantransfer.__main__")


def test_module_discovery_finds_every_source_file():
    root = Path(__file__).resolve().parent.parent / "gantransfer"
    files = {".".join(("gantransfer", *p.relative_to(root).with_suffix("").parts)).removesuffix(
        ".__init__") for p in root.rglob("*.py")} - {"gantransfer", "gantransfer.__main__"}
    assert files <= set(all_modules())


@pytest.mark.parametrize("name", all_modules())
def test_docstring_examples(name, tmp_path, monkeypatch):
    import os

    backend = os.environ["KERAS_BACKEND"]
    if name.startswith("gantransfer.backend.") and name != f"gantransfer.backend.{backend}":
        pytest.skip(f"{name}'s examples run on its own backend; this run is on {backend}")
    monkeypatch.chdir(tmp_path)  # examples that write files write them here, never into the checkout
    before = set(Path(__file__).resolve().parent.parent.iterdir())
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    runnable = [line for line in Path(module.__file__).read_text().splitlines()
                if ">>> " in line and "doctest: +SKIP" not in line]
    if runnable:  # a module that shows runnable examples runs them
        assert result.attempted > 0, f"{name} shows examples but none ran"
    assert set(Path(__file__).resolve().parent.parent.iterdir()) == before


def test_every_public_function_and_class_has_a_docstring_with_an_example():
    import inspect

    import gantransfer as gt

    missing = []
    for name in gt.__all__:
        obj = getattr(gt, name)
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and \
                "Example" not in (inspect.getdoc(obj) or ""):
            missing.append(name)
    assert not missing, f"public API without an example: {missing}"


def test_public_functions_are_annotated():
    import inspect

    import gantransfer as gt

    bare = []
    for name in gt.__all__:
        obj = getattr(gt, name)
        if inspect.isfunction(obj):
            signature = inspect.signature(obj)
            if signature.return_annotation is inspect.Signature.empty or any(
                    p.annotation is inspect.Parameter.empty for p in signature.parameters.values()
                    if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)):
                bare.append(name)
    assert not bare, f"public functions without full annotations: {bare}"
    assert (__import__("pathlib").Path(gt.__file__).parent / "py.typed").is_file()
