"""Statistics over seeds: paired confidence intervals, the headline per budget, the sanity flags."""

import math

import numpy as np
import pytest

from gantransfer.evaluation import (StrategyResult, comparisons, headline, paired_interval,
                                    render_flag, sanity_flags, verdict)

# Student t quantiles t(0.975, df) from printed tables, so the interval is checked against numbers
# that scipy did not compute.
T_975 = {2: 4.302653, 7: 2.364624}


def records(table: dict, budget=10) -> list[StrategyResult]:
    """``{strategy: [accuracy per seed]}`` as results, seeds 0, 1, ..."""
    return [StrategyResult(name, budget, seed=seed, test_accuracy=float(accuracy))
            for name, accuracies in table.items() for seed, accuracy in enumerate(accuracies)]


def shifted(seeds: int, shift: float, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """B over ``seeds`` seeds and A = B + shift + centred noise: A - B averages ``shift``."""
    rng = np.random.default_rng(seed)
    b = rng.uniform(0.55, 0.65, size=seeds)
    jitter = rng.normal(0.0, noise, size=seeds)
    return b + shift + (jitter - jitter.mean()), b


def test_interval_covers_a_known_difference_over_eight_seeds():
    a, b = shifted(8, 0.05, 0.005, seed=1)
    item = next(c for c in comparisons(records({"a": a, "b": b})) if c["kind"] == "winner")
    assert (item["strategy"], item["other"], item["paired"]) == ("a", "b", True)
    assert item["difference"] == pytest.approx(0.05)
    assert 0.0 < item["ci_low"] < 0.05 < item["ci_high"]
    assert item["significant"] is True
    assert item["ci_method"] == "paired t-interval over 8 seeds, 95%"
    assert verdict(records({"a": a, "b": b}))[0].startswith("At 10 labels/class a wins (")


def test_a_noisy_difference_over_three_seeds_is_not_significant():
    a, b = shifted(3, 0.02, 0.10, seed=2)
    results = records({"a": a, "b": b})
    item = comparisons(results)[0]
    assert item["ci_low"] < 0.0 < item["ci_high"]
    assert item["significant"] is False
    lines = verdict(results)
    assert lines[0] == (f"At 10 labels/class a scores highest ({100 * a.mean():.1f}%, +2.0 points "
                        "over b, not significant).")
    assert ", not significant (paired t-interval over 3 seeds, 95%: " in lines[1]
    assert not any(" wins" in line for line in lines)


@pytest.mark.parametrize("seeds, noise", [(8, 0.005), (3, 0.10)])
def test_interval_matches_mean_plus_or_minus_t_sd_over_root_n(seeds, noise):
    a, b = shifted(seeds, 0.05, noise, seed=seeds)
    differences = [x - y for x, y in zip(a, b)]
    mean = sum(differences) / seeds
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / (seeds - 1))
    half = T_975[seeds - 1] * sd / math.sqrt(seeds)
    assert paired_interval(differences) == pytest.approx((mean - half, mean + half), rel=1e-5)
    item = comparisons(records({"a": a, "b": b}))[0]
    assert (item["ci_low"], item["ci_high"]) == pytest.approx((mean - half, mean + half), rel=1e-5)


def test_paired_interval_edge_cases():
    assert paired_interval([0.05]) is None and paired_interval([]) is None
    # Every seed agrees exactly: no spread for a t-interval. Three seeds on one side are no
    # evidence on their own (sign test, p = 0.25): no interval, never a win. Six are (p = 0.031).
    assert paired_interval([0.25, 0.25, 0.25]) is None
    assert paired_interval([0.05] * 6) == pytest.approx((0.05, 0.05), abs=1e-12)
    assert paired_interval([0.05] * 5) is None
    same = comparisons(records({"a": [0.7, 0.6], "b": [0.7, 0.6]}))[0]
    assert (same["ci_low"], same["ci_high"], same["significant"]) == (0.0, 0.0, False)
    ahead = comparisons(records({"a": [0.8, 0.7], "b": [0.7, 0.6]}))[0]
    assert ahead["significant"] is False and ahead["ci_method"] is None
    assert paired_interval([0.0, 0.1], confidence=0.5)[1] < paired_interval([0.0, 0.1])[1]
    with pytest.raises(ValueError, match="Received: confidence=95"):
        paired_interval([0.1, 0.2], confidence=95)


def test_one_seed_gives_no_interval_and_no_win():
    results = records({"gan-frozen": [0.80], "random-frozen": [0.60]})
    for item in comparisons(results):
        assert item["ci_low"] is None and item["ci_method"] is None
        assert item["significant"] is False
    assert verdict(results) == [
        "At 10 labels/class gan-frozen scores highest (80.0%, +20.0 points over random-frozen, "
        "no interval can be given); GAN pretraining vs its random-trunk control for gan-frozen "
        "(+20.0 points): no interval can be given.",
        "At 10 labels/class gan-frozen scores highest: 80.0%, +20.0 points over random-frozen, no "
        "interval can be given (1 seed).",
        "At 10 labels/class GAN pretraining vs a random trunk (frozen): +20.0 points, no interval "
        "can be given (1 seed; gan-frozen 80.0% vs random-frozen 60.0%).",
    ]


def test_unpaired_seeds_give_no_interval_and_no_win():
    results = records({"a": [0.80, 0.82, 0.84], "b": [0.70, 0.72]})
    item = comparisons(results)[0]
    assert not item["paired"] and item["difference"] == pytest.approx(0.11)
    assert item["ci_low"] is None and item["significant"] is False
    assert verdict(results)[1] == ("At 10 labels/class a scores highest: 82.0% ± 2.0, +11.0 "
                                   "points over b, no interval can be given (unpaired seeds: 3 vs "
                                   "2).")


def test_a_significant_loss_is_called_a_loss():
    results = records({"scratch": [0.90, 0.91, 0.92], "gan-frozen": [0.80, 0.82, 0.81]})
    line = next(line for line in verdict(results) if " vs scratch:" in line)
    assert line.startswith("At 10 labels/class gan-frozen vs scratch: -10.0 points, a loss "
                           "(paired t-interval over 3 seeds, 95%: ")


# ----------------------------------------------------------------------------------------------
# The headline
# ----------------------------------------------------------------------------------------------

def test_headline_has_one_sentence_per_budget():
    results = (records({"gan-frozen": [0.70, 0.72, 0.74], "random-frozen": [0.60, 0.63, 0.63],
                        "gan-linear-probe": [0.69, 0.70, 0.68],
                        "random-linear-probe": [0.66, 0.70, 0.68]}, budget=10)
               + records({"scratch": [0.88, 0.90, 0.89], "gan-finetune": [0.85, 0.86, 0.87]},
                         budget=100)
               + records({"scratch": [0.95, 0.96]}, budget="all")
               + records({"pixels-linear": [0.5]}, budget=5))
    assert headline(results) == [
        "At 5 labels/class only pixels-linear has results (50.0%).",
        "At 10 labels/class gan-frozen scores highest (72.0%, +3.0 points over gan-linear-probe, "
        "not significant); GAN pretraining beats its random-trunk control for gan-frozen "
        "(+10.0 points); GAN pretraining does not significantly beat its random-trunk control for "
        "gan-linear-probe (+1.0 points).",
        "At 100 labels/class scratch wins (89.0%, +3.0 points over gan-finetune); no random-trunk "
        "control ran.",
        "With all labels only scratch has results (95.5%).",
    ]
    assert verdict(results)[:4] == headline(results)


def test_headline_groups_gan_strategies_with_the_same_claim():
    results = records({"gan-frozen": [0.70, 0.72, 0.74], "random-frozen": [0.60, 0.63, 0.63],
                       "gan-linear-probe": [0.80, 0.81, 0.82],
                       "random-linear-probe": [0.70, 0.70, 0.73]})
    assert headline(results) == [
        "At 10 labels/class gan-linear-probe wins (81.0%, +9.0 points over gan-frozen); GAN "
        "pretraining beats its random-trunk control for gan-frozen (+10.0 points) and "
        "gan-linear-probe (+10.0 points)."]


def test_headline_calls_a_tie_a_tie():
    results = records({"a": [0.7, 0.8], "b": [0.8, 0.7]})
    assert headline(results) == ["At 10 labels/class a and b tie at 75.0%."]
    # The same models twice (a fine-tuning strategy that kept its head's): the winner is measured
    # against the best strategy that differs, not against its twin.
    results = records({"imagenet-frozen": [0.74, 0.72, 0.76, 0.73, 0.75],
                       "imagenet-finetune": [0.74, 0.72, 0.76, 0.73, 0.75],
                       "gan-linear-probe": [0.73, 0.73, 0.75, 0.72, 0.72]})
    winner = comparisons(results)[0]
    assert (winner["strategy"], winner["other"], winner["ties"]) == (
        "imagenet-frozen", "gan-linear-probe", ["imagenet-finetune"])
    assert winner["difference"] == pytest.approx(0.01) and winner["significant"] is False
    assert headline(results) == [
        "At 10 labels/class imagenet-frozen and imagenet-finetune score highest, equal on every "
        "seed (74.0%, +1.0 points over gan-linear-probe, not significant); no random-trunk "
        "control ran."]
    assert verdict(results)[1].startswith(
        "At 10 labels/class imagenet-frozen and imagenet-finetune score highest, equal on every "
        "seed: 74.0% ± 1.6, +1.0 points over gan-linear-probe, not significant (paired ")
    # Three clearly ahead, and all the same: a win, and a tie when nothing else ran.
    ahead = records({"x": [0.9, 0.91, 0.92], "y": [0.9, 0.91, 0.92], "z": [0.9, 0.91, 0.92],
                     "w": [0.5, 0.52, 0.49]})
    assert headline(ahead) == ["At 10 labels/class x, y and z win, equal on every seed (91.0%, "
                               "+40.7 points over w)."]
    alone = records({"x": [0.9, 0.91], "y": [0.9, 0.91]})
    assert comparisons(alone)[0]["ties"] == ["y"] and headline(alone) == [
        "At 10 labels/class x and y tie at 90.5%."]
    # Every strategy tied is named, the same models or the same mean
    assert headline(records({"x": [0.9, 0.91], "y": [0.9, 0.91], "z": [0.9, 0.91]})) == [
        "At 10 labels/class x, y and z tie at 90.5%."]
    assert headline(records({"x": [0.7, 0.8], "y": [0.7, 0.8], "w": [0.8, 0.7]})) == [
        "At 10 labels/class x, y and w tie at 75.0%."]


# ----------------------------------------------------------------------------------------------
# Sanity flags: below logistic regression on raw pixels
# ----------------------------------------------------------------------------------------------

def test_sanity_flags_exactly_the_trained_models_below_raw_pixels():
    results = (records({"pixels-linear": [0.67, 0.67], "scratch": [0.70, 0.72],
                        "gan-frozen": [0.60, 0.62], "gan-finetune": [0.68, 0.66],
                        # Controls and probes may score below pixels: not flagged.
                        "random-frozen": [0.50, 0.52], "gan-linear-probe": [0.60, 0.61],
                        "my-method": [0.1, 0.1]}, budget=10)
               + records({"pixels-linear": [0.78], "scratch": [0.70], "gan-frozen": [0.80],
                          "gan-finetune": [0.78]}, budget=100))
    flags = sanity_flags(results)
    assert [(f["labels_per_class"], f["strategy"], f["baseline"]) for f in flags] == [
        (10, "gan-frozen", "pixels-linear"), (100, "scratch", "pixels-linear")]
    assert (flags[0]["mean"], flags[0]["baseline_mean"]) == pytest.approx((0.61, 0.67))
    # gan-finetune ties pixels-linear at 67.0% at 10 and 78.0% at 100: a tie is not below.
    assert render_flag(flags[0]) == ("gan-frozen scores below logistic regression on raw pixels at "
                                     "10 labels/class (61.0% vs 67.0%): a sign that it trained "
                                     "poorly.")
    lines = verdict(results)
    assert lines[2:4] == [render_flag(flag) for flag in flags]  # right after the two headlines


def test_no_sanity_flag_without_pixels_or_when_every_model_beats_them():
    assert sanity_flags(records({"scratch": [0.1], "gan-frozen": [0.1]})) == []
    assert sanity_flags(records({"pixels-linear": [0.5], "scratch": [0.6], "gan-frozen": [0.51],
                                 "gan-finetune": [0.7]})) == []
    assert not any("raw pixels" in line for line in verdict(records({"pixels-linear": [0.5],
                                                                     "scratch": [0.6]})))
