"""The examples in docstrings run and give what they show."""

import doctest
import importlib

import pytest

MODULES = ["gantransfer.config", "gantransfer.runs", "gantransfer.images", "gantransfer.gan.models",
           "gantransfer.gan.sampling", "gantransfer.shapes", "gantransfer.evaluation.gan_metrics",
           "gantransfer.visualize", "gantransfer.errors",
           "gantransfer.gan.dcgan", "gantransfer.gan.train", "gantransfer.data",
           "gantransfer.data.batches", "gantransfer.data.sources", "gantransfer.transfer.trunks",
           "gantransfer.transfer.classifiers", "gantransfer.transfer.probe",
           "gantransfer.transfer.protocol"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0, f"{name} has no runnable example"


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
