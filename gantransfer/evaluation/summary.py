"""Summaries over seeds and a plain-words verdict from a list of :class:`StrategyResult`.

Only results with a test accuracy and status ``"ok"`` (:attr:`StrategyResult.has_results`) take
part in summaries and verdicts; skipped and failed ones are left out. Which strategies are compared
with which (a GAN strategy with its random-trunk control, GAN strategies with training from scratch)
comes from the strategy registry's families, never from the names; a name outside the registry is
summarised and ranked, and compared by family with nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

import numpy as np

from gantransfer.evaluation.results import Budget, StrategyResult, normalize_budget
from gantransfer.registry import STRATEGIES, control_of, family_of

__all__ = ["budget_label", "budget_order", "budget_phrase", "budget_sort_key", "comparisons",
           "normalize_budget", "per_seed", "render_comparison", "strategy_order", "summarize",
           "verdict"]


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
    if paired:
        diffs = [a[s] - b[s] for s in a]
        difference, difference_std = _mean_std(diffs)
    else:
        difference, difference_std = mean_a - mean_b, None
    return {"labels_per_class": budget, "strategy": first, "other": second,
            "mean": mean_a, "std": std_a, "n": len(a),
            "other_mean": mean_b, "other_std": std_b, "other_n": len(b),
            "difference": difference, "difference_std": difference_std, "paired": paired}


def comparisons(results: list[StrategyResult]) -> list[dict[str, Any]]:
    """The comparisons behind the verdict, as data (all accuracies are fractions, not percent).

    For each budget, in order:

    - ``kind="winner"``: the strategy with the highest mean test accuracy (``strategy``) and its
      margin over the runner-up (``other``); ``other`` is ``None`` when only one strategy ran.
    - ``kind="control"``: each strategy of the ``gan`` family against its random-trunk control
      (:func:`gantransfer.registry.control_of`: the ``random`` strategy of the same method).
    - ``kind="scratch"``: each ``gan`` strategy against each strategy of the ``scratch`` family.

    Each dict holds ``kind``, ``labels_per_class``, ``strategy``, ``other``, ``mean``, ``std``,
    ``n`` (seeds of ``strategy``), ``other_mean``, ``other_std``, ``other_n``, ``difference``
    (``strategy`` minus ``other``: the mean per-seed difference when ``paired``, else the difference
    of means), ``difference_std`` (std of the per-seed differences when paired, else ``None``) and
    ``paired`` (both have results for exactly the same seeds).

    Families come from the registry (:func:`gantransfer.registry.family_of`); names outside it
    are in family ``"other"`` and only take part in the ``winner`` comparison.

    Args:
        results: One per trained model.

    Returns:
        The comparisons; only strategies present in ``results`` are compared.

    Example:
        >>> results = [StrategyResult(name, 10, seed=seed, test_accuracy=accuracy)
        ...            for name, accuracies in {"gan-frozen": (0.7, 0.8),
        ...                                     "random-frozen": (0.5, 0.6)}.items()
        ...            for seed, accuracy in enumerate(accuracies)]
        >>> for c in comparisons(results):
        ...     print(c["kind"], c["strategy"], c["other"], round(c["difference"], 3))
        winner gan-frozen random-frozen 0.2
        control gan-frozen random-frozen 0.2
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
                          "paired": False})
        elif ranked:
            item = _difference(results, ranked[0]["strategy"], ranked[1]["strategy"], budget)
            found.append({"kind": "winner", **item})
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


def _with_std(mean: float, std: float | None) -> str:
    return _pct(mean) if std is None else f"{_pct(mean)} ± {100.0 * std:.1f}"


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def _spread(item: dict[str, Any]) -> str:
    """How the spread of a difference is stated: paired std, or both strategies' stds."""
    if item["paired"]:
        if item["difference_std"] is None:
            return f"{_seeds(item['n'])}, no spread to show"
        return f"± {100.0 * item['difference_std']:.1f} over {_seeds(item['n'])}"
    stds = [s for s in (item["std"], item["other_std"]) if s is not None]
    text = ("stds " + " and ".join(f"{100.0 * s:.1f}" for s in (item["std"], item["other_std"]))
            if len(stds) == 2 else "no paired spread")
    return f"{text}; seeds differ: {item['n']} vs {item['other_n']}"


def _within_spread(item: dict[str, Any]) -> bool:
    """Whether a margin is no larger than the seed-to-seed spread that comes with it."""
    if item["paired"]:
        spread = item["difference_std"]
    else:
        stds = [s for s in (item["std"], item["other_std"]) if s is not None]
        spread = max(stds) if stds else None
    return spread is not None and abs(item["difference"]) <= spread


def render_comparison(item: dict[str, Any]) -> str:
    """One comparison from :func:`comparisons` as a plain sentence.

    Example:
        >>> render_comparison({"kind": "winner", "labels_per_class": 10, "strategy": "gan-frozen",
        ...     "other": "scratch", "mean": 0.715, "std": 0.012, "n": 5, "other_mean": 0.697,
        ...     "other_std": 0.01, "other_n": 5, "difference": 0.018, "difference_std": 0.009,
        ...     "paired": True})
        'At 10 labels/class gan-frozen wins: 71.5% ± 1.2, 1.8 points over scratch (± 0.9 over 5 seeds).'
    """
    where = budget_phrase(item["labels_per_class"])
    name, other = item["strategy"], item["other"]
    if item["kind"] == "winner":
        head = _with_std(item["mean"], item["std"])
        if other is None:
            return f"{where} only {name} has results: {head} over {_seeds(item['n'])}."
        if item["difference"] == 0:
            return (f"{where} {name} and {other} tie at {_pct(item['mean'])} "
                    f"({_spread(item)}).")
        text = (f"{where} {name} wins: {head}, {100.0 * item['difference']:.1f} points over "
                f"{other} ({_spread(item)})")
        if _within_spread(item):
            text += ", within the seed-to-seed spread, so not a clear win"
        return text + "."
    sign = f"{100.0 * item['difference']:+.1f} points"
    detail = f"{name} {_pct(item['mean'])} vs {other} {_pct(item['other_mean'])}"
    if item["kind"] == "control":
        info = STRATEGIES.get(name)
        what = name if info is None else info.method
        return (f"{where} GAN pretraining vs a random trunk ({what}): {sign} "
                f"({_spread(item)}; {detail}).")
    if item["kind"] == "scratch":
        return f"{where} {name} vs {other}: {sign} ({_spread(item)}; {detail})."
    raise ValueError(f"unknown comparison kind {item['kind']!r}; expected 'winner', 'control' or "
                     "'scratch'")


def verdict(results: list[StrategyResult]) -> list[str]:
    """The verdict in plain sentences: per budget the winner, GAN vs random trunk, GAN vs scratch.

    Args:
        results: One per trained model.

    Returns:
        One sentence per comparison from :func:`comparisons`, in the same order; empty when no
        result has a test accuracy.

    Example:
        >>> records = [StrategyResult(s, 10, seed=seed, test_accuracy=acc)
        ...            for s, accs in {"scratch": [0.60, 0.62], "gan-frozen": [0.70, 0.71]}.items()
        ...            for seed, acc in enumerate(accs)]
        >>> for line in verdict(records):  # doctest: +NORMALIZE_WHITESPACE
        ...     print(line)
        At 10 labels/class gan-frozen wins: 70.5% ± 0.7, 9.5 points over scratch
            (± 0.7 over 2 seeds).
        At 10 labels/class gan-frozen vs scratch: +9.5 points
            (± 0.7 over 2 seeds; gan-frozen 70.5% vs scratch 61.0%).
    """
    return [render_comparison(item) for item in comparisons(results)]
