"""Summaries over seeds and a plain-words verdict from a list of :class:`StrategyResult`.

Only results with a test accuracy and status ``"ok"`` (:attr:`StrategyResult.has_results`) take
part in summaries and verdicts; skipped and failed ones are left out. Which strategies are compared
with which (a GAN strategy with its random-trunk control, GAN strategies with training from scratch)
comes from the strategy registry's families, never from the names; a name outside the registry is
summarised and ranked, and compared by family with nothing.

Every difference is paired over seeds and comes with a Student t confidence interval
(:func:`paired_interval`); the verdict calls it a win or a loss only when that interval excludes 0.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

import numpy as np
from scipy import stats

from gantransfer.evaluation.results import Budget, StrategyResult, normalize_budget
from gantransfer.registry import STRATEGIES, control_of, family_of

__all__ = ["CONFIDENCE", "budget_label", "budget_order", "budget_phrase", "budget_sort_key",
           "comparisons", "headline", "normalize_budget", "paired_interval", "per_seed",
           "render_comparison", "render_flag", "sanity_flags", "strategy_order", "summarize",
           "verdict"]

# The confidence level of every interval in the verdict.
CONFIDENCE = 0.95
# Per-seed differences are differences of floats: an interval that misses 0 by less than this is
# rounding, not a result.
_ZERO = 1e-12
# Every model that trains a network on the labels should beat logistic regression on raw pixels;
# one that does not trained poorly. Random trunks are controls and may well score below it.
_SHOULD_BEAT_PIXELS = {"families": ("scratch", "gan"),
                       "methods": ("full", "frozen", "finetune", "semisupervised")}
_PIXELS_BASELINE = {"family": "pixels", "method": "linear-probe"}


def budget_sort_key(value: Any) -> tuple[int, float, str]:
    """Sorts budgets: numbers ascending, then ``"all"``, then any other name alphabetically.

    Example:
        >>> sorted(["all", 100, 10], key=budget_sort_key)
        [10, 100, 'all']
    """
    budget = normalize_budget(value)
    if isinstance(budget, int):
        return (0, float(budget), "")
    return (1 if budget == "all" else 2, 0.0, budget)


def budget_phrase(value: Any) -> str:
    """Words for a budget in a sentence: ``"At 10 labels/class"`` or ``"With all labels"``."""
    budget = normalize_budget(value)
    if isinstance(budget, int):
        return f"At {budget} label{'s' if budget != 1 else ''}/class"
    if budget == "all":
        return "With all labels"
    return f"At budget {budget!s}"


def budget_label(value: Any) -> str:
    """A budget as a short label: ``"10 labels/class"`` or ``"all labels"``.

    Example:
        >>> budget_label(10), budget_label("all")
        ('10 labels/class', 'all labels')
    """
    budget = normalize_budget(value)
    if isinstance(budget, int):
        return f"{budget} label{'s' if budget != 1 else ''}/class"
    return "all labels" if budget == "all" else f"budget {budget}"


def strategy_order(results: Iterable[StrategyResult]) -> list[str]:
    """Strategy names in the order they first appear in ``results`` (with results or not)."""
    return list(dict.fromkeys(result.strategy for result in results))


def budget_order(results: Iterable[StrategyResult]) -> list[Budget]:
    """The distinct budgets of the results with a test accuracy, sorted with :func:`budget_sort_key`."""
    budgets = {r.labels_per_class for r in results if r.has_results}
    return sorted(budgets, key=budget_sort_key)


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (ddof=1); the std is ``None`` below two values."""
    if not values:
        return None, None
    array = np.asarray(values, dtype="float64")
    std = float(np.std(array, ddof=1)) if array.size > 1 else None
    return float(np.mean(array)), std


def per_seed(results: Iterable[StrategyResult], strategy: str, budget: Any,
             key: str = "test_accuracy") -> dict[Any, float]:
    """``{seed: value}`` of the field ``key`` for one strategy and budget; repeated seeds averaged.

    Results without a seed each count as their own seed (keyed ``("record", index)``).

    Example:
        >>> results = [StrategyResult("scratch", 10, seed=s, test_accuracy=a)
        ...            for s, a in ((0, 0.5), (1, 0.7), (1, 0.9))]
        >>> per_seed(results, "scratch", 10)
        {0: 0.5, 1: 0.8}
    """
    budget = normalize_budget(budget)
    values: dict[Any, list[float]] = {}
    for index, result in enumerate(results):
        if not result.has_results or result.strategy != strategy:
            continue
        if result.labels_per_class != budget:
            continue
        value = getattr(result, key)
        if value is None:
            continue
        seed = ("record", index) if result.seed is None else result.seed
        values.setdefault(seed, []).append(float(value))
    return {seed: float(np.mean(v)) for seed, v in values.items()}


def summarize(results: list[StrategyResult]) -> list[dict[str, Any]]:
    """Mean and spread over seeds of each strategy at each label budget.

    Only results with a test accuracy count (:attr:`StrategyResult.has_results`). Standard deviations are sample standard deviations
    over seeds (ddof=1) and are ``None`` when there is a single seed.

    Args:
        results: One per trained model.

    Returns:
        One dict per (strategy, budget) with results, sorted by budget and then by the order in
        which strategies first appear, with keys ``strategy``, ``labels_per_class``, ``n_seeds``,
        ``seeds``, ``test_accuracy_mean``, ``test_accuracy_std``, ``macro_f1_mean``,
        ``macro_f1_std``, ``train_time_s_mean``, ``epochs_mean``, ``trainable_params``,
        ``total_params``, ``learning_rates``, ``C_values`` (distinct values chosen on validation)
        and ``phase_kept`` (``{phase: count}``).

    Example:
        >>> rows = summarize([StrategyResult("scratch", 10, seed=0, test_accuracy=0.6),
        ...                   StrategyResult("scratch", 10, seed=1, test_accuracy=0.8)])
        >>> rows[0]["n_seeds"], round(rows[0]["test_accuracy_mean"], 3)
        (2, 0.7)
    """
    strategies = strategy_order(results)
    rows = []
    for budget in budget_order(results):
        for strategy in strategies:
            records = [r for r in results if r.has_results and r.strategy == strategy
                       and r.labels_per_class == budget]
            if not records:
                continue
            accuracy = per_seed(records, strategy, budget, "test_accuracy")
            macro_f1 = per_seed(records, strategy, budget, "macro_f1")
            row: dict[str, Any] = {"strategy": strategy, "labels_per_class": budget,
                                   "n_seeds": len(accuracy),
                                   "seeds": [s for s in accuracy if not isinstance(s, tuple)]}
            row["test_accuracy_mean"], row["test_accuracy_std"] = _mean_std(list(accuracy.values()))
            row["macro_f1_mean"], row["macro_f1_std"] = _mean_std(list(macro_f1.values()))
            for key in ("train_time_s", "epochs", "trainable_params", "total_params"):
                values = [float(v) for v in (getattr(r, key) for r in records) if v is not None]
                mean = _mean_std(values)[0]
                if key in ("trainable_params", "total_params") and mean is not None:
                    mean = int(round(mean))
                row[key if key.endswith("params") else f"{key}_mean"] = mean
            row["learning_rates"] = _distinct(r.learning_rate for r in records)
            row["C_values"] = _distinct(r.C for r in records)
            phases = Counter(r.phase_kept for r in records if r.phase_kept)
            row["phase_kept"] = dict(sorted(phases.items()))
            rows.append(row)
    return rows


def _distinct(values: Iterable[float | None]) -> list[float]:
    return sorted({float(v) for v in values if v is not None})


def paired_interval(differences: Iterable[float],
                    confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The Student t confidence interval of the mean of paired differences.

    ``mean ± t(1 - (1 - confidence) / 2, n - 1) · sd / √n`` (``sd`` with ddof=1), from
    :func:`scipy.stats.t.interval`. Identical differences have no spread to build a t-interval
    from: all zero, they give ``(0, 0)`` (no difference); otherwise the exact sign test decides,
    and an interval of zero width comes back only when ``n`` seeds all on one side are
    significant on their own (two-sided ``2 · 0.5^n`` below ``1 - confidence``: 6 seeds at 95%),
    else None.

    Args:
        differences: One difference per seed (``first[seed] - second[seed]``).
        confidence: The confidence level, between 0 and 1.

    Returns:
        ``(low, high)``, or ``None`` below two differences: one seed gives no interval.

    Example:
        >>> low, high = paired_interval([0.04, 0.06, 0.05, 0.05])
        >>> round(low, 4), round(high, 4)
        (0.037, 0.063)
        >>> paired_interval([0.05]) is None
        True
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1. Received: confidence={confidence}")
    array = np.asarray(list(differences), dtype="float64")
    if array.size < 2:
        return None
    mean = float(np.mean(array))
    sem = float(np.std(array, ddof=1)) / np.sqrt(array.size)
    # Every seed agrees (to rounding: 0.8 - 0.7 and 0.7 - 0.6 differ in the last bit); scipy
    # answers NaN for a zero scale, and a scale of 1e-17 would call anything significant.
    if np.ptp(array) <= 1e-12:
        mean = float(np.round(mean, 12))
        if mean == 0.0 or 2.0 * 0.5 ** array.size < 1.0 - confidence:
            return mean, mean
        return None  # 2 to 5 identical differences: a sign test cannot call them, nor a t-interval
    low, high = stats.t.interval(confidence, df=array.size - 1, loc=mean, scale=sem)
    return float(low), float(high)


def _difference(results: list[StrategyResult], first: str, second: str,
                budget: Budget) -> dict[str, Any] | None:
    """How much ``first`` beats ``second`` at ``budget``: paired over seeds when the seeds match."""
    a = per_seed(results, first, budget)
    b = per_seed(results, second, budget)
    if not a or not b:
        return None
    mean_a, std_a = _mean_std(list(a.values()))
    mean_b, std_b = _mean_std(list(b.values()))
    paired = set(a) == set(b) and not any(isinstance(s, tuple) for s in a)
    interval = None
    if paired:
        diffs = [a[s] - b[s] for s in a]
        difference, difference_std = _mean_std(diffs)
        interval = paired_interval(diffs)
    else:
        difference, difference_std = mean_a - mean_b, None
    return {"labels_per_class": budget, "strategy": first, "other": second,
            "mean": mean_a, "std": std_a, "n": len(a),
            "other_mean": mean_b, "other_std": std_b, "other_n": len(b),
            "difference": difference, "difference_std": difference_std, "paired": paired,
            **_interval_keys(interval, len(a))}


def _interval_keys(interval: tuple[float, float] | None, n: int) -> dict[str, Any]:
    """The interval of a comparison as its dict stores it; ``None`` values when there is none."""
    if interval is None:
        return {"ci_low": None, "ci_high": None, "ci_method": None, "significant": False}
    low, high = interval
    return {"ci_low": low, "ci_high": high,
            "ci_method": f"paired t-interval over {_seeds(n)}, {100 * CONFIDENCE:.0f}%",
            "significant": low > _ZERO or high < -_ZERO}


def comparisons(results: list[StrategyResult]) -> list[dict[str, Any]]:
    """The comparisons behind the verdict, as data (all accuracies are fractions, not percent).

    For each budget, in order:

    - ``kind="winner"``: the strategy with the highest mean test accuracy (``strategy``) and its
      margin over the runner-up (``other``); ``other`` is ``None`` when only one strategy ran.
      Strategies that scored exactly the winner's accuracy on every seed (the same models, such
      as a fine-tuning strategy whose head alone won) are listed in ``ties``, and ``other`` is the
      best strategy that differs from them (the last of them when none differs).
    - ``kind="control"``: each strategy of the ``gan`` family against its random-trunk control
      (:func:`gantransfer.registry.control_of`: the ``random`` strategy of the same method).
    - ``kind="scratch"``: each ``gan`` strategy against each strategy of the ``scratch`` family.

    Each dict holds ``kind``, ``labels_per_class``, ``strategy``, ``other``, ``mean``, ``std``,
    ``n`` (seeds of ``strategy``), ``other_mean``, ``other_std``, ``other_n``, ``difference``
    (``strategy`` minus ``other``: the mean per-seed difference when ``paired``, else the difference
    of means), ``difference_std`` (std of the per-seed differences when paired, else ``None``) and
    ``paired`` (both have results for exactly the same seeds), and the difference's confidence
    interval (:func:`paired_interval`): ``ci_low`` and ``ci_high``, ``ci_method`` (such as
    ``"paired t-interval over 3 seeds, 95%"``) and ``significant`` (the interval excludes 0).
    Without a paired interval (one seed, seeds that differ, or a ``winner`` alone) ``ci_low``,
    ``ci_high`` and ``ci_method`` are ``None`` and ``significant`` is ``False``.

    Families come from the registry (:func:`gantransfer.registry.family_of`); names outside it
    are in family ``"other"`` and only take part in the ``winner`` comparison.

    Args:
        results: One per trained model.

    Returns:
        The comparisons; only strategies present in ``results`` are compared.

    Example:
        >>> results = [StrategyResult(name, 10, seed=seed, test_accuracy=accuracy)
        ...            for name, accuracies in {"gan-frozen": (0.70, 0.80, 0.75),
        ...                                     "random-frozen": (0.50, 0.61, 0.56)}.items()
        ...            for seed, accuracy in enumerate(accuracies)]
        >>> for c in comparisons(results):
        ...     print(c["kind"], c["strategy"], c["other"], round(c["difference"], 3),
        ...           c["ci_method"], c["significant"])
        winner gan-frozen random-frozen 0.193 paired t-interval over 3 seeds, 95% True
        control gan-frozen random-frozen 0.193 paired t-interval over 3 seeds, 95% True
    """
    summary = summarize(results)
    found: list[dict[str, Any]] = []
    for budget in budget_order(results):
        rows = [r for r in summary if r["labels_per_class"] == budget]
        ranked = sorted(rows, key=lambda r: -r["test_accuracy_mean"])  # stable: ties keep order
        if len(ranked) == 1:
            only = ranked[0]
            found.append({"kind": "winner", "labels_per_class": budget,
                          "strategy": only["strategy"], "other": None,
                          "mean": only["test_accuracy_mean"], "std": only["test_accuracy_std"],
                          "n": only["n_seeds"], "other_mean": None, "other_std": None,
                          "other_n": 0, "difference": None, "difference_std": None,
                          "paired": False, **_interval_keys(None, only["n_seeds"]),
                          "ties": []})
        elif ranked:
            # A strategy whose every seed scored exactly the winner's (gan-finetune when the head
            # alone won over the folds: the same models) ties with it; the winner is measured
            # against the best strategy that differs.
            best = per_seed(results, ranked[0]["strategy"], budget)
            ties = [r["strategy"] for r in ranked[1:]
                    if per_seed(results, r["strategy"], budget) == best]
            other = next((r["strategy"] for r in ranked[1:] if r["strategy"] not in ties),
                         ties[-1] if ties else None)
            item = _difference(results, ranked[0]["strategy"], other, budget)
            found.append({"kind": "winner", **item, "ties": ties})
        present = [r["strategy"] for r in rows]
        gan = [name for name in present if family_of(name) == "gan"]
        for name in gan:
            control = control_of(name)
            if control in present:
                found.append({"kind": "control", **_difference(results, name, control, budget)})
        for baseline in (name for name in present if family_of(name) == "scratch"):
            for name in gan:
                found.append({"kind": "scratch", **_difference(results, name, baseline, budget)})
    return found


def _pct(value: float) -> str:
    return f"{100.0 * value:.1f}%"


def _points(value: float) -> str:
    return f"{100.0 * value:+.1f} points"


def _with_std(mean: float, std: float | None) -> str:
    return _pct(mean) if std is None else f"{_pct(mean)} ± {100.0 * std:.1f}"


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def _call(item: dict[str, Any]) -> str:
    """What a comparison may claim: a win or a loss only when its interval excludes 0."""
    if item["ci_method"] is None:
        return "no interval can be given"
    if not item["significant"]:
        return "not significant"
    return "a win" if item["difference"] > 0 else "a loss"


def _basis(item: dict[str, Any]) -> str:
    """The interval and how it was computed, or why there is none."""
    if item["ci_method"] is not None:
        return (f"{item['ci_method']}: {100.0 * item['ci_low']:+.1f} to "
                f"{100.0 * item['ci_high']:+.1f}")
    if item["paired"]:
        return _seeds(item["n"])
    return f"unpaired seeds: {item['n']} vs {item['other_n']}"


def render_comparison(item: dict[str, Any]) -> str:
    """One comparison from :func:`comparisons` as a plain sentence, with its interval.

    Example:
        >>> render_comparison({"kind": "scratch", "labels_per_class": 10,
        ...     "strategy": "gan-frozen", "other": "scratch", "mean": 0.715, "std": 0.012, "n": 5,
        ...     "other_mean": 0.697, "other_std": 0.01, "other_n": 5, "difference": 0.018,
        ...     "difference_std": 0.009, "paired": True, "ci_low": 0.007, "ci_high": 0.029,
        ...     "ci_method": "paired t-interval over 5 seeds, 95%", "significant": True})
        'At 10 labels/class gan-frozen vs scratch: +1.8 points, a win (paired t-interval over 5 seeds, 95%: +0.7 to +2.9; gan-frozen 71.5% vs scratch 69.7%).'
    """
    where = budget_phrase(item["labels_per_class"])
    name, other = item["strategy"], item["other"]
    if item["kind"] == "winner":
        head = _with_std(item["mean"], item["std"])
        if other is None:
            return f"{where} only {name} has results: {head} over {_seeds(item['n'])}."
        if item["difference"] == 0:
            return f"{where} {_everyone(item)} tie at {_pct(item['mean'])} ({_basis(item)})."
        call = _call(item)
        if item.get("ties"):
            names = _and([name, *item["ties"]])
            verb = "win" if call == "a win" else "score highest"
            said = "" if call == "a win" else f", {call}"
            return (f"{where} {names} {verb}, equal on every seed: {head}, "
                    f"{_points(item['difference'])} over {other}{said} ({_basis(item)}).")
        if call == "a win":
            return (f"{where} {name} wins: {head}, {_points(item['difference'])} over {other} "
                    f"({_basis(item)}).")
        return (f"{where} {name} scores highest: {head}, {_points(item['difference'])} over "
                f"{other}, {call} ({_basis(item)}).")
    detail = f"{name} {_pct(item['mean'])} vs {other} {_pct(item['other_mean'])}"
    said = f"{_points(item['difference'])}, {_call(item)} ({_basis(item)}; {detail})"
    if item["kind"] == "control":
        info = STRATEGIES.get(name)
        what = name if info is None else info.method
        return f"{where} GAN pretraining vs a random trunk ({what}): {said}."
    if item["kind"] == "scratch":
        return f"{where} {name} vs {other}: {said}."
    raise ValueError(f"unknown comparison kind {item['kind']!r}; expected 'winner', 'control' or "
                     "'scratch'")


# What GAN pretraining does against its random-trunk control, by what the comparison may claim.
_AGAINST_CONTROL = {"a win": "beats", "a loss": "loses to",
                    "not significant": "does not significantly beat"}


def _and(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _everyone(item: dict[str, Any]) -> str:
    """The winner, its twins and the runner-up of a tie, each named once."""
    ties = item.get("ties", [])
    return _and([item["strategy"], *ties, *([item["other"]] if item["other"] not in ties else [])])


def _winner_clause(item: dict[str, Any]) -> str:
    name, other = item["strategy"], item["other"]
    if other is None:
        return f"only {name} has results ({_pct(item['mean'])})"
    if item["difference"] == 0:
        return f"{_everyone(item)} tie at {_pct(item['mean'])}"
    margin = f"{_pct(item['mean'])}, {_points(item['difference'])} over {other}"
    call = _call(item)
    if item.get("ties"):
        names = _and([name, *item["ties"]])
        if call == "a win":
            return f"{names} win, equal on every seed ({margin})"
        return f"{names} score highest, equal on every seed ({margin}, {call})"
    if call == "a win":
        return f"{name} wins ({margin})"
    return f"{name} scores highest ({margin}, {call})"


def _control_clauses(controls: list[dict[str, Any]]) -> list[str]:
    """GAN pretraining against its random-trunk control: one clause per claim, strategies
    grouped."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in controls:
        groups.setdefault(_call(item), []).append(item)
    clauses = []
    for call, items in groups.items():
        which = " and ".join(f"{i['strategy']} ({_points(i['difference'])})" for i in items)
        if call in _AGAINST_CONTROL:
            clauses.append(f"GAN pretraining {_AGAINST_CONTROL[call]} its random-trunk control for "
                           f"{which}")
        else:
            clauses.append(f"GAN pretraining vs its random-trunk control for {which}: {call}")
    return clauses


def headline(results: list[StrategyResult]) -> list[str]:
    """One sentence per budget: the winner, and whether GAN pretraining beats its random-trunk
    control.

    The winner "wins" only when its paired interval over the runner-up excludes 0; GAN pretraining
    "beats" (or "loses to") its control (:func:`gantransfer.registry.control_of`) on the same
    condition. A budget where GAN strategies ran without any of their controls says so; one
    without GAN strategies says nothing about them.

    Args:
        results: One per trained model.

    Returns:
        One sentence per budget with results, in budget order.

    Example:
        >>> records = [StrategyResult(s, 10, seed=seed, test_accuracy=acc)
        ...            for s, accs in {"gan-frozen": [0.70, 0.72, 0.74],
        ...                            "random-frozen": [0.60, 0.63, 0.63]}.items()
        ...            for seed, acc in enumerate(accs)]
        >>> print(headline(records)[0])  # doctest: +NORMALIZE_WHITESPACE
        At 10 labels/class gan-frozen wins (72.0%, +10.0 points over random-frozen);
            GAN pretraining beats its random-trunk control for gan-frozen (+10.0 points).
    """
    compared = comparisons(results)
    summary = summarize(results)
    sentences = []
    for budget in budget_order(results):
        here = [item for item in compared if item["labels_per_class"] == budget]
        clauses = [_winner_clause(item) for item in here if item["kind"] == "winner"]
        controls = [item for item in here if item["kind"] == "control"]
        if controls:
            clauses += _control_clauses(controls)
        elif any(row["labels_per_class"] == budget and family_of(row["strategy"]) == "gan"
                 for row in summary):
            clauses.append("no random-trunk control ran")
        sentences.append(f"{budget_phrase(budget)} " + "; ".join(clauses) + ".")
    return sentences


def sanity_flags(results: list[StrategyResult]) -> list[dict[str, Any]]:
    """Models that score below logistic regression on raw pixels: a sign that they trained poorly.

    At every budget, each strategy of the ``scratch`` and ``gan`` families that trains a network
    (methods ``full``, ``frozen`` and ``finetune``) should have a higher mean test accuracy than the
    ``pixels`` family's ``linear-probe``. Which strategies these are comes from the registry.

    Args:
        results: One per trained model.

    Returns:
        One dict per strategy and budget where it scores lower, with keys ``labels_per_class``,
        ``strategy``, ``mean``, ``baseline`` (the pixels strategy) and ``baseline_mean``; empty
        when no pixels baseline ran.

    Example:
        >>> records = [StrategyResult("pixels-linear", 10, seed=0, test_accuracy=0.67),
        ...            StrategyResult("gan-frozen", 10, seed=0, test_accuracy=0.61),
        ...            StrategyResult("scratch", 10, seed=0, test_accuracy=0.70)]
        >>> [(f["strategy"], f["baseline"]) for f in sanity_flags(records)]
        [('gan-frozen', 'pixels-linear')]
    """
    summary = summarize(results)
    flags = []
    for budget in budget_order(results):
        rows = [row for row in summary if row["labels_per_class"] == budget]
        baselines = [row for row in rows if _is(row["strategy"], **_PIXELS_BASELINE)]
        checked = [row for row in rows if _should_beat_pixels(row["strategy"])]
        for baseline in baselines:
            for row in checked:
                if row["test_accuracy_mean"] < baseline["test_accuracy_mean"]:
                    flags.append({"labels_per_class": budget, "strategy": row["strategy"],
                                  "mean": row["test_accuracy_mean"],
                                  "baseline": baseline["strategy"],
                                  "baseline_mean": baseline["test_accuracy_mean"]})
    return flags


def _is(name: str, family: str, method: str) -> bool:
    info = STRATEGIES.get(name)
    return info is not None and info.family == family and info.method == method


def _should_beat_pixels(name: str) -> bool:
    info = STRATEGIES.get(name)
    return (info is not None and info.family in _SHOULD_BEAT_PIXELS["families"]
            and info.method in _SHOULD_BEAT_PIXELS["methods"])


def render_flag(flag: dict[str, Any]) -> str:
    """One flag from :func:`sanity_flags` as a plain sentence.

    Example:
        >>> render_flag({"labels_per_class": 10, "strategy": "gan-frozen", "mean": 0.612,
        ...              "baseline": "pixels-linear", "baseline_mean": 0.671})
        'gan-frozen scores below logistic regression on raw pixels at 10 labels/class (61.2% vs 67.1%): a sign that it trained poorly.'
    """
    return (f"{flag['strategy']} scores below logistic regression on raw pixels at "
            f"{budget_label(flag['labels_per_class'])} ({_pct(flag['mean'])} vs "
            f"{_pct(flag['baseline_mean'])}): a sign that it trained poorly.")


def verdict(results: list[StrategyResult]) -> list[str]:
    """The verdict in plain sentences, in reading order.

    First :func:`headline` (one sentence per budget), then :func:`sanity_flags` (models below raw
    pixels), then every comparison from :func:`comparisons` with its interval.

    Args:
        results: One per trained model.

    Returns:
        The sentences; empty when no result has a test accuracy.

    Example:
        >>> records = [StrategyResult(s, 10, seed=seed, test_accuracy=acc)
        ...            for s, accs in {"scratch": [0.60, 0.62, 0.61],
        ...                            "gan-frozen": [0.70, 0.71, 0.60]}.items()
        ...            for seed, acc in enumerate(accs)]
        >>> for line in verdict(records):  # doctest: +NORMALIZE_WHITESPACE
        ...     print(line)
        At 10 labels/class gan-frozen scores highest (67.0%, +6.0 points over scratch,
            not significant); no random-trunk control ran.
        At 10 labels/class gan-frozen scores highest: 67.0% ± 6.1, +6.0 points over scratch,
            not significant (paired t-interval over 3 seeds, 95%: -9.1 to +21.1).
        At 10 labels/class gan-frozen vs scratch: +6.0 points, not significant
            (paired t-interval over 3 seeds, 95%: -9.1 to +21.1; gan-frozen 67.0% vs scratch 61.0%).
    """
    return (headline(results) + [render_flag(flag) for flag in sanity_flags(results)]
            + [render_comparison(item) for item in comparisons(results)])
