"""The strategy registry: every transfer strategy's facts, in one place.

An entry says what a strategy is (its family and method), what it needs to run, and what it does in
one line. Config validation, the CLI's help, the report's grouping and the figures' colours read
these entries; nothing tells strategies apart by their names. The code that trains each strategy is
registered against the same names in :mod:`gantransfer.transfer_learning.strategies`.

This module imports nothing heavy, so a config can be checked without Keras.

Example:
    >>> STRATEGIES["gan-frozen"].family, STRATEGIES["gan-frozen"].needs
    ('gan', ('discriminator',))
    >>> control_of("gan-linear-probe")
    'random-linear-probe'
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from gantransfer.errors import ConfigError

# The kinds of trunk a strategy starts from, in the order reports and figures show them.
FAMILIES = ("scratch", "gan", "imagenet", "random", "pixels")
# What a strategy does with its trunk.
METHODS = ("full", "frozen", "finetune", "linear-probe", "semisupervised")
# What a strategy may need that a run might not have.
NEEDS = ("discriminator", "backbone_weights")
# The family of a name outside the registry (a results file from elsewhere, a test's made-up name):
# summarised and drawn like any other strategy, compared with nothing by family.
OTHER = "other"


@dataclass(frozen=True)
class StrategyInfo:
    """The facts about one strategy.

    Attributes:
        name: What users type (``gan-frozen``).
        family: Where its trunk comes from: one of :data:`FAMILIES`.
        method: What it trains: the whole network (``full``), a head on a ``frozen`` trunk, a head
            then everything (``finetune``), a ``linear-probe`` on pooled features, or the whole
            network as a GAN's discriminator on the unlabeled images too (``semisupervised``).
        needs: What it cannot run without: a GAN ``discriminator``, ImageNet ``backbone_weights``.
        description: One line for help texts and reports.
        by_default: Whether a comparison runs it when no strategies are named. The
            semi-supervised GANs are not: each of their models trains a GAN, minutes where the
            others take seconds, so they run where a config or ``--strategies`` names them.

    Example:
        >>> STRATEGIES["scratch"].trains_through_pixels
        True
    """

    name: str
    family: str
    method: str
    needs: tuple[str, ...]
    description: str
    by_default: bool = True

    def __post_init__(self) -> None:
        if self.family not in FAMILIES or self.method not in METHODS or \
                not set(self.needs) <= set(NEEDS):
            raise ValueError(f"strategy {self.name!r}: family {self.family!r}, method "
                             f"{self.method!r} or needs {self.needs!r} not among {FAMILIES}, "
                             f"{METHODS}, {NEEDS}")

    @property
    def trains_through_pixels(self) -> bool:
        """Whether gradients reach the trunk (from scratch or fine-tuned), not only a head."""
        return self.method in ("full", "finetune", "semisupervised")


STRATEGIES: dict[str, StrategyInfo] = {info.name: info for info in (
    StrategyInfo("scratch", "scratch", "full", (),
                 "the discriminator's architecture, randomly initialised, all of it trained"),
    StrategyInfo("gan-frozen", "gan", "frozen", ("discriminator",),
                 "the GAN discriminator's trunk, frozen; only a head trains"),
    StrategyInfo("gan-finetune", "gan", "finetune", ("discriminator",),
                 "the GAN discriminator's trunk: a head first, then everything at a lower rate"),
    StrategyInfo("gan-linear-probe", "gan", "linear-probe", ("discriminator",),
                 "the DCGAN paper's protocol: every conv block max-pooled to 4x4, a linear "
                 "classifier"),
    StrategyInfo("gan-semisupervised", "gan", "semisupervised", ("discriminator",),
                 "the GAN discriminator's trunk, trained on as a semi-supervised GAN's "
                 "discriminator",
                 by_default=False),
    StrategyInfo("imagenet-frozen", "imagenet", "frozen", ("backbone_weights",),
                 "an ImageNet backbone, frozen; only a head trains"),
    StrategyInfo("imagenet-finetune", "imagenet", "finetune", ("backbone_weights",),
                 "an ImageNet backbone: a head first, then everything at a lower rate"),
    StrategyInfo("random-frozen", "random", "frozen", (),
                 "control: the discriminator's architecture, random and frozen; a head trains"),
    StrategyInfo("random-linear-probe", "random", "linear-probe", (),
                 "control: the linear-probe protocol on a random trunk of the same architecture"),
    StrategyInfo("random-semisupervised", "random", "semisupervised", (),
                 "control: the same semi-supervised GAN from a random trunk", by_default=False),
    StrategyInfo("pixels-linear", "pixels", "linear-probe", (),
                 "control: the same linear classifier on raw pixels"),
)}


def strategy(name: str) -> StrategyInfo:
    """The registry entry of a strategy; an unknown name lists the valid ones.

    Example:
        >>> strategy("pixels-linear").family
        'pixels'
    """
    if name in STRATEGIES:
        return STRATEGIES[name]
    close = difflib.get_close_matches(str(name), list(STRATEGIES), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"unknown strategy {name!r}{hint}; expected one of {', '.join(STRATEGIES)}")


def family_of(name: str) -> str:
    """The family of a strategy, or :data:`OTHER` for a name outside the registry.

    Reports and figures use this, so results from elsewhere are still summarised and drawn.

    Example:
        >>> family_of("random-frozen"), family_of("my-own-method")
        ('random', 'other')
    """
    info = STRATEGIES.get(name)
    return OTHER if info is None else info.family


def in_family(family: str) -> tuple[str, ...]:
    """The names of a family's strategies, in registry order.

    Example:
        >>> in_family("imagenet")
        ('imagenet-frozen', 'imagenet-finetune')
    """
    return tuple(name for name, info in STRATEGIES.items() if info.family == family)


def control_of(name: str) -> str | None:
    """The random-trunk control of a GAN strategy (the same method on a random trunk), if any.

    Example:
        >>> control_of("gan-finetune") is None, control_of("scratch") is None
        (True, True)
    """
    info = strategy(name)
    if info.family != "gan":
        return None
    return next((other.name for other in STRATEGIES.values()
                 if other.family == "random" and other.method == info.method), None)
