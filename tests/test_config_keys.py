"""Every config key is read by the code it configures: a key that nothing reads cannot exist.

A recorder wraps attribute access on the config sections and notes each key read from outside
``gantransfer.config`` (validation, ``to_dict`` and ``==`` read every field and prove nothing). A tiny
``compare`` that exercises every kind of training and every optional part must then have read every
key.
"""

import dataclasses
import sys
import typing

import pytest

import gantransfer as gt
from gantransfer.config import Config

SECTIONS = typing.get_type_hints(Config)
# Reads from these modules are bookkeeping (validation, serialisation, equality), not use.
BOOKKEEPING = {"gantransfer.config", "dataclasses", "copy"}


def all_keys() -> set[str]:
    return {f"{section}.{field.name}" for section, cls in SECTIONS.items()
            for field in dataclasses.fields(cls)}


class ReadRecorder:
    """Notes ``section.key`` for every config field read from outside the bookkeeping modules."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reads: set[str] = set()
        for section, cls in SECTIONS.items():
            names = {field.name for field in dataclasses.fields(cls)}
            monkeypatch.setattr(cls, "__getattribute__", self._getter(section, names))

    def _getter(self, section: str, names: set[str]):
        reads = self.reads

        def getattribute(obj, name):
            value = object.__getattribute__(obj, name)
            if name in names and sys._getframe(1).f_globals.get("__name__") not in BOOKKEEPING:
                reads.add(f"{section}.{name}")
            return value

        return getattribute


def test_the_recorder_sees_reads_and_ignores_bookkeeping(monkeypatch):
    recorder = ReadRecorder(monkeypatch)
    config = gt.load_config(None)  # validation reads every key: not counted
    assert config == gt.load_config(None) and config.to_dict()  # neither are == and to_dict
    assert recorder.reads == set()
    config.data.dataset  # noqa: B018 (a real read, from here)
    config.transfer.augments  # noqa: B018 (a property of config.py reading two keys: not counted)
    assert recorder.reads == {"data.dataset"}
    assert "transfer.augment_flip" in all_keys() - recorder.reads


@pytest.mark.slow
def test_a_full_comparison_reads_every_config_key(monkeypatch, tmp_path):
    # One strategy of each kind of training covers every key; metrics_every=0 is read all the same.
    # The GAN's linear probe runs (digits has labels), so its sizes are read too.
    config = gt.load_config("digits", [
        "gan.width=0.125", "gan.latent_dim=8", "gan.kernel_size=3", "train.epochs=1",
        "train.batch_size=64", "train.verbose=0", "train.sample_images=4", "train.metrics_every=0",
        "train.metrics_images=50", "train.probe_every=1", "train.probe_labels_per_class=3",
        "train.probe_images=50", "transfer.labels_per_class=3", "transfer.seeds=1",
        "transfer.strategies=scratch,gan-finetune,gan-linear-probe,imagenet-frozen",
        "transfer.learning_rates=0.01", "transfer.max_epochs=2", "transfer.patience=1",
        "transfer.bn_images=64", "transfer.backbone_weights=none", "transfer.backbone_input_size=32",
        "transfer.report_pictures=true", "transfer.robustness=0,0.1", "transfer.robustness_steps=2",
        "transfer.robustness_images=10", "transfer.adversarial_training=fgsm"])
    recorder = ReadRecorder(monkeypatch)
    result = gt.compare(config, tmp_path / "cmp", verbose=False)
    assert result.files["report.html"].is_file()
    # The semi-supervised GAN skips under adversarial training: it trains apart, on its GAN.
    semisupervised = dataclasses.replace(config, transfer=dataclasses.replace(
        config.transfer, strategies=["gan-semisupervised"], adversarial_training="none",
        robustness=[], semisupervised_steps=2, semisupervised_batch_size=16))
    models = gt.transfer(semisupervised, tmp_path / "semi", discriminator=tmp_path / "cmp" / "gan",
                         verbose=False)
    assert [r.status for r in models.results] == ["ok"]
    unread = all_keys() - recorder.reads
    assert not unread, f"config keys that no code path read: {sorted(unread)}"
