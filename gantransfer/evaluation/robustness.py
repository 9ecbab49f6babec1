"""Accuracy under attack over seeds, and what pretraining does to it, paired with intervals.

With ``transfer.robustness`` every trained model is attacked after training and its
:attr:`StrategyResult.robust_accuracy` holds accuracy under attack by epsilon. This module summarises
those numbers (mean ± std over seeds per strategy, budget and epsilon) and answers the course's
question: does GAN pretraining, or ImageNet pretraining, make a classifier more robust? Each
pretrained strategy is paired over seeds with training from scratch, and each GAN strategy with its
random-trunk control, at the largest epsilon attacked, with the same Student t-interval as the rest
of the verdict (:func:`gantransfer.evaluation.summary.paired_interval`).

Example:
    >>> rows = [StrategyResult(s, 10, seed=seed, test_accuracy=a, robust_accuracy={0: a, 0.1: r})
    ...         for s, values in {"scratch": [(0.8, 0.10), (0.82, 0.12)],
    ...                           "gan-finetune": [(0.84, 0.20), (0.83, 0.21)]}.items()
    ...         for seed, (a, r) in enumerate(values)]
    >>> [(c["strategy"], round(c["difference"], 2)) for c in robust_comparisons(rows)]
    [('gan-finetune', 0.1)]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gantransfer.evaluation.results import StrategyResult, epsilon_key
from gantransfer.evaluation.summary import (CONFIDENCE, budget_order, budget_phrase,
                                            paired_interval, strategy_order)
from gantransfer.registry import control_of, family_of

__all__ = ["attacked_epsilons", "render_robust_comparison", "robust_comparisons",
           "robustness_summary"]


def attacked_epsilons(results: list[StrategyResult]) -> list[float]:
    """Every epsilon any result was attacked at, ascending.

    Example:
        >>> attacked_epsilons([StrategyResult("scratch", 10, test_accuracy=0.9,
        ...                                   robust_accuracy={0.1: 0.2, 0: 0.9})])
        [0.0, 0.1]
    """
    return sorted({float(e) for r in results if r.has_results for e in r.robust_accuracy})


def _per_seed(results: list[StrategyResult], strategy: str, budget: Any,
              epsilon: float) -> dict[Any, float]:
    key = epsilon_key(epsilon)
    values: dict[Any, list[float]] = {}
    for index, r in enumerate(results):
        if (r.has_results and r.strategy == strategy and r.labels_per_class == budget
                and r.robust_accuracy.get(key) is not None):
            seed = ("record", index) if r.seed is None else r.seed
            values.setdefault(seed, []).append(float(r.robust_accuracy[key]))
    return {seed: float(np.mean(v)) for seed, v in values.items()}


def robustness_summary(results: list[StrategyResult]) -> list[dict[str, Any]]:
    """Accuracy under attack per strategy, budget and epsilon: mean, std (ddof=1) and seeds.

    Example:
        >>> rows = [StrategyResult("scratch", 10, seed=s, test_accuracy=0.9,
        ...                        robust_accuracy={0.1: v}) for s, v in enumerate([0.2, 0.4])]
        >>> row = robustness_summary(rows)[0]
        >>> row["epsilon"], round(row["mean"], 2), round(row["std"], 3), row["n_seeds"]
        (0.1, 0.3, 0.141, 2)
    """
    rows = []
    for budget in budget_order(results):
        for strategy in strategy_order(results):
            for epsilon in attacked_epsilons(results):
                values = list(_per_seed(results, strategy, budget, epsilon).values())
                if values:
                    rows.append({"strategy": strategy, "labels_per_class": budget,
                                 "epsilon": epsilon, "mean": float(np.mean(values)),
                                 "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
                                 "n_seeds": len(values)})
    return rows


def _compare(results: list[StrategyResult], kind: str, name: str, other: str, budget: Any,
             epsilon: float) -> dict[str, Any] | None:
    a = _per_seed(results, name, budget, epsilon)
    b = _per_seed(results, other, budget, epsilon)
    seeds = sorted(set(a) & set(b), key=str)
    if not seeds:
        return None
    differences = [a[s] - b[s] for s in seeds]
    interval = paired_interval(differences)
    difference = float(np.mean(differences))
    return {"kind": kind, "labels_per_class": budget, "epsilon": epsilon, "strategy": name,
            "other": other, "mean": float(np.mean([a[s] for s in seeds])),
            "other_mean": float(np.mean([b[s] for s in seeds])), "n": len(seeds),
            "difference": difference,
            "ci_low": None if interval is None else interval[0],
            "ci_high": None if interval is None else interval[1],
            "ci_method": None if interval is None else
            f"paired t-interval over {len(seeds)} seeds, {100 * CONFIDENCE:.0f}%",
            "significant": interval is not None and (interval[0] > 0 or interval[1] < 0)}


def robust_comparisons(results: list[StrategyResult]) -> list[dict[str, Any]]:
    """What pretraining does to accuracy under attack, at the largest epsilon attacked.

    Per budget: each ``gan`` and ``imagenet`` strategy against each ``scratch`` strategy
    (``kind="pretraining"``), and each ``gan`` strategy against its random-trunk control
    (``kind="control"``). Differences are paired over the seeds both have (``strategy`` minus
    ``other``, fractions), with a Student t-interval; ``significant`` when it excludes 0.
    """
    epsilons = [e for e in attacked_epsilons(results) if e > 0]
    if not epsilons:
        return []
    epsilon = epsilons[-1]
    found = []
    for budget in budget_order(results):
        present = [s for s in strategy_order(results) if _per_seed(results, s, budget, epsilon)]
        for name in present:
            family = family_of(name)
            if family in ("gan", "imagenet"):
                for baseline in (s for s in present if family_of(s) == "scratch"):
                    item = _compare(results, "pretraining", name, baseline, budget, epsilon)
                    found += [item] if item else []
            control = control_of(name) if family == "gan" else None
            if control in present:
                item = _compare(results, "control", name, control, budget, epsilon)
                found += [item] if item else []
    return found


def render_robust_comparison(item: dict[str, Any], attack: str) -> str:
    """One comparison as a sentence.

    Example:
        >>> render_robust_comparison({"kind": "pretraining", "labels_per_class": 10,
        ...     "epsilon": 0.1, "strategy": "gan-finetune", "other": "scratch", "mean": 0.205,
        ...     "other_mean": 0.11, "n": 2, "difference": 0.095, "ci_low": 0.03, "ci_high": 0.16,
        ...     "ci_method": "paired t-interval over 2 seeds, 95%", "significant": True}, "PGD-20")
        'At 10 labels/class, under PGD-20 at ε = 0.1, gan-finetune vs scratch: +9.5 points of accuracy under attack, more robust (paired t-interval over 2 seeds, 95%: +3.0 to +16.0; 20.5% vs 11.0%).'
    """
    where = f"{budget_phrase(item['labels_per_class'])}, under {attack} at ε = {item['epsilon']:g}"
    what = "GAN pretraining vs a random trunk" if item["kind"] == "control" else ""
    pair = f"{item['strategy']} vs {item['other']}"
    if item["ci_method"] is None:
        call, basis = "no interval can be given", f"{item['n']} seed"
    else:
        call = ("not significant" if not item["significant"]
                else "more robust" if item["difference"] > 0 else "less robust")
        basis = (f"{item['ci_method']}: {100 * item['ci_low']:+.1f} to "
                 f"{100 * item['ci_high']:+.1f}")
    label = f"{what} ({pair})" if what else pair
    return (f"{where}, {label}: {100 * item['difference']:+.1f} points of accuracy under attack, "
            f"{call} ({basis}; {100 * item['mean']:.1f}% vs {100 * item['other_mean']:.1f}%).")
