"""Config loading, validation and overrides."""

from pathlib import Path

import pytest
import yaml

from gantransfer.config import Config, config_from_dict, load_config, parse_override, save_config
from gantransfer.errors import ConfigError

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


def test_defaults_are_the_paper_settings():
    config = Config()
    assert config.data.dataset == "digits"
    assert (config.gan.latent_dim, config.gan.learning_rate, config.gan.beta_1) == (100, 2e-4, 0.5)
    assert config.train.batch_size == 128


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_load(path):
    config = load_config(path)
    assert isinstance(config, Config)
    assert config.data.dataset == path.stem


def test_shipped_configs_include_digits_and_fashion_mnist():
    assert {"digits", "fashion_mnist"} <= {p.stem for p in CONFIGS}


def test_overrides_parse_yaml_values():
    config = load_config(None, ["gan.latent_dim=64", "gan.width=0.5", "data.channels=null",
                                "train.deterministic=true", "data.dataset=/tmp/my images"])
    assert config.gan.latent_dim == 64
    assert config.gan.width == 0.5
    assert config.data.channels is None
    assert config.train.deterministic is True
    assert config.data.dataset == "/tmp/my images"


def test_override_beats_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 3\n  seed: 7\n")
    config = load_config(path, ["train.epochs=9"])
    assert (config.train.epochs, config.train.seed) == (9, 7)


def test_int_accepted_for_float_but_not_bool_for_int():
    assert load_config(None, ["gan.width=1"]).gan.width == 1.0
    with pytest.raises(ConfigError, match=r"train.epochs: received True"):
        load_config(None, ["train.epochs=true"])


@pytest.mark.parametrize("override, message", [
    ("gan.latnt_dim=3", r"unknown config key 'gan.latnt_dim' \(did you mean 'latent_dim'\?\)"),
    ("model.width=3", r"unknown config key 'model.width'"),
    ("train.epochs=ten", r"train.epochs: received 'ten' \(str\), expected an integer"),
    ("train.epochs=0", r"train.epochs: received 0, expected an integer >= 1"),
    ("data.image_size=30", r"data.image_size: received 30, expected 4 or 7 times a power of two"),
    ("data.channels=2", r"data.channels: received 2, expected 1, 3 or null"),
    ("data.validation_split=0.1", r"'data.validation_split' was removed: .*transfer.validation_fraction"),
    ("data.labels_per_class=10", r"'data.labels_per_class' was removed: .*transfer.labels_per_class"),
    ("gan.learning_rate=-1", r"gan.learning_rate: received -1.0, expected a number in \(0, 1\)"),
    ("train.verbose=5", r"train.verbose: received 5"),
    ("train.probe_every=-1", r"train.probe_every: received -1, expected an integer >= 0 \(0 is off\)"),
    ("train.probe_labels_per_class=0",
     r"train.probe_labels_per_class: received 0, expected an integer >= 1"),
    ("train.probe_images=0", r"train.probe_images: received 0, expected an integer >= 1"),
    ("train.probe_every=true", r"train.probe_every: received True"),
    ("transfer.scratch_width=0.001", r"transfer.scratch_width: received 0.001, expected null "
     r"\(the discriminator's width\) or a width multiplier in \(0, 16\] giving at least one filter"),
    ("transfer.scratch_width=narrow", r"transfer.scratch_width: received 'narrow' \(str\), "
     r"expected a number or null"),
    ("transfer.backbone_learning_rates=0.01,1.5",
     r"transfer.backbone_learning_rates: received 1.5, expected numbers in \(0, 1\)"),
    ("transfer.workers=0", r"transfer.workers: received 0, expected an integer >= 1, or auto "
     r"\(one per core\)"),
    ("transfer.workers=many", r"transfer.workers: received 'many', expected an integer >= 1, or "
     r"auto \(one per core\)"),
    ("transfer.semisupervised_unlabeled_weight=-0.5",
     r"transfer.semisupervised_unlabeled_weight: received -0.5, expected a finite number >= 0"),
    ("transfer.semisupervised_unlabeled_weight=.inf",
     r"transfer.semisupervised_unlabeled_weight: received inf, expected a finite number >= 0"),
    ("transfer.semisupervised_decay=1.5",
     r"transfer.semisupervised_decay: received 1.5, expected a fraction in \[0, 1\]"),
    ("epochs=3", r"expected section.key=value"),
    ("train.epochs", r"expected section.key=value"),
])
def test_bad_values_name_key_value_and_allowed(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_unknown_key_in_file_is_rejected(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'train.epoch'.*did you mean 'epochs'"):
        load_config(path)


def test_unknown_section_is_rejected():
    with pytest.raises(ConfigError, match=r"unknown config key 'trian'.*did you mean 'train'"):
        config_from_dict({"trian": {}})


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match=r"does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"expected a mapping"):
        load_config(listy)


def test_resolved_config_round_trips(tmp_path):
    config = load_config(None, ["gan.latent_dim=12", "data.dataset=fashion_mnist"])
    save_config(config, tmp_path / "config.yaml")
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["gan"]["latent_dim"] == 12
    assert load_config(tmp_path / "config.yaml") == config


def test_parse_override_keeps_strings():
    assert parse_override("data.dataset=digits") == (["data", "dataset"], "digits")


@pytest.mark.parametrize("text, value", [("2e-4", 2e-4), ("1E-4", 1e-4), ("5e-1", 0.5),
                                         (".0002", 2e-4), ("2.0e-4", 2e-4), ("1_0e-5", 1e-4)])
def test_every_python_float_spelling_is_a_number(text, value):
    # YAML 1.1 reads "2e-4" (no dot) as a string; it was rejected, though the README writes it so.
    assert load_config(None, [f"gan.learning_rate={text}"]).gan.learning_rate == pytest.approx(value)


def test_float_spellings_in_lists_and_in_yaml_files(tmp_path):
    config = load_config(None, ["transfer.learning_rates=1e-2,1e-3", "transfer.probe_c=1e-3"])
    assert config.transfer.learning_rates == [0.01, 0.001] and config.transfer.probe_c == [0.001]
    path = tmp_path / "config.yaml"
    path.write_text("gan:\n  learning_rate: 2e-4\ntransfer:\n  learning_rates: [1e-2, 1e-3]\n")
    loaded = load_config(path)
    assert loaded.gan.learning_rate == 2e-4 and loaded.transfer.learning_rates == [0.01, 0.001]


def test_a_word_is_still_not_a_number():
    with pytest.raises(ConfigError, match=r"gan.learning_rate: received 'fast' \(str\), expected a "
                                          r"number"):
        load_config(None, ["gan.learning_rate=fast"])
    with pytest.raises(ConfigError, match=r"gan.learning_rate: received nan"):
        load_config(None, ["gan.learning_rate=nan"])


@pytest.mark.parametrize("key", ["data.split_seed", "train.probe_seed"])
def test_a_seed_of_the_data_draws_follows_train_seed_once_and_a_saved_config_keeps_it(tmp_path,
                                                                                       key):
    """The test split's seed and the GAN probe's: null takes train.seed, once, and the config
    records it, so a copy at another GAN seed, or the saved config rerun at one, draws the same
    images."""
    from dataclasses import replace

    section, name = key.split(".")

    def seed(config):
        return getattr(getattr(config, section), name)

    config = load_config(None, ["train.seed=3"])
    assert seed(config) == 3
    save_config(config, tmp_path / "config.yaml")
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())[section][name] == 3
    again = replace(config, train=replace(config.train, seed=4))
    rerun = load_config(tmp_path / "config.yaml", ["train.seed=4"])
    assert seed(again) == seed(rerun) == 3
    assert seed(load_config(None, ["train.seed=4", f"{key}=3"])) == 3
    with pytest.raises(ConfigError, match=f"{key}: received -1"):
        load_config(None, [f"{key}=-1"])


def test_the_split_seed_draws_the_held_out_images():
    from dataclasses import replace

    from gantransfer.gan.train import load_gan_data

    config = load_config(None, ["train.seed=3", "data.image_size=8"])
    held_out = load_gan_data(config).test.fingerprint()
    again = replace(config, train=replace(config.train, seed=4))
    assert load_gan_data(again).test.fingerprint() == held_out
    assert load_gan_data(load_config(None, ["train.seed=4", "data.image_size=8"])
                         ).test.fingerprint() != held_out
