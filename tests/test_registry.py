"""The strategy registry: its facts, its runners, and the code that reads it instead of names."""

import re
from pathlib import Path

import pytest

from gantransfer import registry
from gantransfer.errors import ConfigError
from gantransfer.registry import (FAMILIES, METHODS, NEEDS, OTHER, STRATEGIES, StrategyInfo,
                                  control_of, family_of, in_family, strategy)

PACKAGE = Path(registry.__file__).resolve().parent


def test_every_registry_entry_has_exactly_one_runner():
    from gantransfer.transfer_learning.strategies import RUNNERS

    assert sorted(RUNNERS) == sorted(STRATEGIES)
    assert len({id(runner) for runner in RUNNERS.values()}) == len(RUNNERS)


def test_a_runner_for_a_name_outside_the_registry_or_a_second_runner_is_refused():
    from gantransfer.transfer_learning.strategies import RUNNERS, runs

    with pytest.raises(ConfigError, match="unknown strategy 'gan-frozn' .*did you mean 'gan-frozen'"):
        runs("gan-frozn")
    before = dict(RUNNERS)
    with pytest.raises(ConfigError, match="'scratch' already runs with run_scratch"):
        runs("scratch")(lambda context: None)
    assert RUNNERS == before


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_entries_hold_valid_facts(name):
    info = STRATEGIES[name]
    assert info.name == name
    assert info.family in FAMILIES and info.method in METHODS
    assert set(info.needs) <= set(NEEDS) and len(set(info.needs)) == len(info.needs)
    assert info.description and "\n" not in info.description and len(info.description) < 100
    assert ("discriminator" in info.needs) == (info.family == "gan")
    assert ("backbone_weights" in info.needs) == (info.family == "imagenet")


def test_an_entry_with_an_unknown_family_method_or_need_is_refused():
    with pytest.raises(ValueError, match="family 'gans'"):
        StrategyInfo("x", "gans", "frozen", (), "x")
    with pytest.raises(ValueError, match="needs \\('gpu',\\)"):
        StrategyInfo("x", "gan", "frozen", ("gpu",), "x")


def test_control_of_pairs_each_gan_strategy_with_the_random_one_of_its_method():
    assert control_of("gan-frozen") == "random-frozen"
    assert control_of("gan-linear-probe") == "random-linear-probe"
    assert control_of("gan-finetune") is None  # no random-finetune control is registered
    assert control_of("gan-semisupervised") == "random-semisupervised"
    assert all(control_of(name) is None for name in STRATEGIES if family_of(name) != "gan")
    with pytest.raises(ConfigError, match="expected one of scratch, gan-frozen"):
        control_of("gan-frozn")


def test_families_of_known_and_unknown_names():
    assert in_family("gan") == ("gan-frozen", "gan-finetune", "gan-linear-probe",
                                "gan-semisupervised")
    assert in_family("random") == ("random-frozen", "random-linear-probe", "random-semisupervised")
    assert family_of("pixels-linear") == "pixels" and family_of("gan-whatever") == OTHER
    assert strategy("scratch") is STRATEGIES["scratch"]


def test_the_default_strategies_are_those_the_registry_runs_by_default():
    from gantransfer.config import load_config

    defaults = load_config(None).transfer.strategies
    assert defaults == [name for name, info in STRATEGIES.items() if info.by_default]
    assert "gan-frozen" in defaults and "pixels-linear" in defaults
    assert not {"gan-semisupervised", "random-semisupervised"} & set(defaults)
    named = load_config(None, ["transfer.strategies=gan-semisupervised"]).transfer.strategies
    assert named == ["gan-semisupervised"]


def test_gt_strategies_is_the_registry():
    import gantransfer as gt

    assert gt.STRATEGIES is STRATEGIES


@pytest.mark.parametrize("command", ["transfer", "compare"])
def test_cli_help_lists_exactly_the_registry_names(command):
    from gantransfer.cli import cli

    option = next(p for p in cli.commands[command].params if p.name == "strategies")
    listed = option.help.removeprefix("Comma-separated:").strip().rstrip(".").split(", ")
    assert listed == list(STRATEGIES)


def test_config_validation_rejects_an_unknown_name_listing_the_valid_ones():
    from gantransfer.config import load_config

    with pytest.raises(ConfigError) as caught:
        load_config(None, ["transfer.strategies=scratch,gan-frozn"])
    message = str(caught.value)
    assert "received 'gan-frozn'" in message
    assert message.endswith("expected some of " + ", ".join(STRATEGIES))


# Telling families apart by a name's prefix or suffix, which only the registry may know.
_BY_NAME = re.compile(
    r"""(startswith|endswith|removeprefix|removesuffix)\(\s*["'](gan|random|imagenet|pixels|scratch)"""
    r"""|(startswith|endswith)\(\s*["']-?(frozen|finetune|linear|probe|linear-probe)["']"""
    r"""|["'](gan|random|imagenet|pixels)-["']"""
    r"""|\b(GAN|RANDOM|IMAGENET|SCRATCH)_PREFIX\b""")


def test_no_module_tells_strategies_apart_by_name():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "registry.py" and path.parent == PACKAGE:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if _BY_NAME.search(line):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert not found, "read gantransfer.registry instead:\n" + "\n".join(found)


@pytest.mark.parametrize("line", [
    'if name.startswith("gan-"):', "control = 'random-' + name[4:]", "GAN_PREFIX = x",
    'name.endswith("-frozen")', "s.removeprefix('imagenet')"])
def test_the_name_scan_catches_prefix_checks(line):
    assert _BY_NAME.search(line)
