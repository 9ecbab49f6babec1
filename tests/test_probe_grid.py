"""A linear probe's C never silently ends at an edge of its grid: the grid grows past it, and says so."""

import numpy as np
import pytest

from gantransfer.transfer_learning.probe import (GRID_EXTENSION_DECADES, choose_C, fit_probe,
                                                 fit_probe_cv)


def _peak_at(best: float):
    """A score that rises towards ``best`` (in decades) and falls beyond it."""
    return lambda C: -abs(np.log10(C) - np.log10(best))


def test_a_best_c_above_the_grid_is_found_by_extending_it_up():
    C, scores, note = choose_C((0.001, 0.01), _peak_at(1.0))
    assert C == pytest.approx(1.0)
    assert sorted(scores) == pytest.approx([0.001, 0.01, 0.1, 1.0, 10.0])
    assert note == "C at the high end of its grid (0.01): extended up, the choice settled at 1"


def test_an_interior_choice_needs_no_extension():
    C, scores, note = choose_C((0.01, 0.1, 1.0), _peak_at(0.1))
    assert (C, sorted(scores), note) == (0.1, [0.01, 0.1, 1.0], None)


def test_an_end_that_beats_the_decade_beyond_it_is_kept_and_said():
    C, scores, note = choose_C((0.1, 1.0), _peak_at(0.1))
    assert C == 0.1 and sorted(scores) == pytest.approx([0.01, 0.1, 1.0])
    assert note == "C at the low end of its grid (0.1): a decade beyond it (0.01) scored no better"


def test_the_extension_is_bounded_and_says_when_the_best_may_lie_further():
    C, scores, note = choose_C((1.0, 10.0), _peak_at(1e-9))
    assert C == pytest.approx(10.0 ** -GRID_EXTENSION_DECADES)
    assert len(scores) == 2 + GRID_EXTENSION_DECADES
    assert note.endswith("and the choice is still at the end: the best C may lie further")


def test_ties_keep_the_smaller_c_and_do_not_extend_a_flat_score():
    C, scores, note = choose_C((0.01, 0.1, 1.0), lambda C: 0.5)
    assert C == 0.01 and "scored no better" in note and len(scores) == 4


def test_the_papers_grid_is_not_extended_but_an_edge_is_said():
    C, scores, note = choose_C((0.1, 1.0), _peak_at(100.0), extend=False)
    assert (C, sorted(scores)) == (1.0, [0.1, 1.0])
    assert note == "C at the high end of its grid (1): the best C may lie beyond it".replace(
        ": the", "; the")


def _imbalanced(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One class in five, told apart by one feature among twenty: a strong regularisation leaves the
    weights too small to outvote the unregularised intercept, which says 'the common class'."""
    y = (rng.random(n) < 0.2).astype(int)
    x = rng.normal(size=(n, 20)).astype("float32")
    x[:, 0] += 3 * y
    return x, y


@pytest.mark.parametrize("fit", ["validation", "cross-validation"])
def test_a_grid_of_too_strong_regularisation_grows_up_to_a_c_that_works(fit):
    rng = np.random.default_rng(0)
    train, val, test = _imbalanced(300, rng), _imbalanced(300, rng), _imbalanced(2000, rng)
    grid = (0.003, 0.01)
    if fit == "validation":
        outcome = fit_probe(train, val, Cs=grid)
    else:
        outcome = fit_probe_cv(train, Cs=grid, folds=3)
    assert outcome.C >= 0.1
    assert outcome.grid_note.startswith("C at the high end of its grid (0.01): extended up")
    at_the_edge = fit_probe(train, val, Cs=(0.01,))
    accuracy = lambda model: np.mean(model.predict(test[0]) == test[1])
    assert accuracy(at_the_edge.model) < 0.85 < accuracy(outcome.model)


def test_warm_starts_reach_the_answer_of_cold_starts():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = x.astype("float32")
    cold, warm = (fit_probe((x[:1000], y[:1000]), (x[1000:1400], y[1000:1400]),
                            Cs=(0.001, 0.01, 0.1, 1.0), warm_start=start) for start in (False, True))
    assert (warm.C, warm.val_accuracy) == (cold.C, cold.val_accuracy)
    agree = np.mean(warm.model.predict(x[1400:]) == cold.model.predict(x[1400:]))
    assert agree >= 0.99
    assert warm.model[-1].warm_start and not cold.model[-1].warm_start
