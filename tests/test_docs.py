"""The examples in docstrings run and give what they show."""

import doctest
import importlib

import pytest

MODULES = ["gantransfer.config", "gantransfer.runs", "gantransfer.images", "gantransfer.gan.models",
           "gantransfer.gan.sampling", "gantransfer.shapes", "gantransfer.evaluation.gan_metrics",
           "gantransfer.visualize",
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
