"""Linear probes at scale: the Keras solver minimises scikit-learn's objective, C is chosen on a
subset or a held-out fold of a large budget, and the final fit still uses every image."""

import keras
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from gantransfer.evaluation.linear import (KERAS_FROM_IMAGES, KERAS_FROM_WIDTH,
                                           KerasLogisticRegression, resolve_solver)
from gantransfer.transfer_learning import probe as probe_module
from gantransfer.transfer_learning.probe import fit_probe, fit_probe_cv, stratified_subset


def _problem(n: int, classes: int = 4, width: int = 12, seed: int = 0):
    """Gaussian classes around random centres: a linear problem that is not separable."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=1.5, size=(classes, width))
    y = rng.integers(0, classes, size=n)
    x = (centres[y] + rng.normal(size=(n, width))).astype("float32")
    return x, y


@pytest.mark.parametrize("C, classes", [(0.01, 4), (1.0, 4), (0.1, 2)])
def test_the_keras_solver_reaches_scikit_learns_optimum(C, classes):
    x, y = _problem(4000, classes)
    exact = LogisticRegression(C=C, max_iter=5000, tol=1e-8).fit(x[:3000], y[:3000])
    # 3,000 images give few steps an epoch: a higher rate and more steps than the defaults, which
    # are made for 10,000 images and more, run it to the optimum
    keras_fit = KerasLogisticRegression(C=C, learning_rate=0.03, min_steps=2000).fit(x[:3000],
                                                                                     y[:3000])
    assert keras_fit.coef_.shape == exact.coef_.shape
    assert keras_fit.intercept_.shape == exact.intercept_.shape
    a, b = keras_fit.coef_.ravel(), exact.coef_.ravel()
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.95  # the same direction
    # and the same length: the same penalty for C, two classes (one score) included
    assert np.linalg.norm(a) / np.linalg.norm(b) == pytest.approx(1.0, abs=0.1)
    agree = np.mean(keras_fit.predict(x[3000:]) == exact.predict(x[3000:]))
    assert agree >= 0.98, agree


def test_a_warm_start_starts_from_the_coefficients_set():
    x, y = _problem(500)
    start = LogisticRegression(C=1.0).fit(x, y)
    # a learning rate of ~0 cannot move the weights: what comes out is where the fit started
    still = KerasLogisticRegression(C=1.0, epochs=1, min_steps=1, learning_rate=1e-12,
                                    warm_start=True)
    still.coef_, still.intercept_ = start.coef_.copy(), start.intercept_.copy()
    still.fit(x, y)
    np.testing.assert_allclose(still.coef_, start.coef_, atol=1e-5)
    cold = KerasLogisticRegression(C=1.0, epochs=1, min_steps=1, learning_rate=1e-12).fit(x, y)
    assert np.abs(cold.coef_).max() < 1e-5  # from zeros, as scikit-learn starts


def test_the_keras_solver_is_float32_under_a_mixed_precision_policy():
    x, y = _problem(600)
    expected = KerasLogisticRegression(C=0.1, min_steps=50).fit(x, y).coef_
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        mixed = KerasLogisticRegression(C=0.1, min_steps=50).fit(x, y).coef_
    finally:
        keras.config.set_dtype_policy(previous)
    np.testing.assert_allclose(mixed, expected, rtol=1e-5, atol=1e-6)


def test_auto_picks_keras_for_large_budgets_and_never_for_svms():
    assert resolve_solver("auto", "logistic", KERAS_FROM_IMAGES - 1) == "scikit-learn"
    assert resolve_solver("auto", "logistic", KERAS_FROM_IMAGES) == "keras"
    assert resolve_solver("auto", "logistic", 10**6, KERAS_FROM_WIDTH) == "keras"
    # narrow features (raw pixels) stay exact at any size; an explicit keras is kept
    assert resolve_solver("auto", "logistic", 10**6, KERAS_FROM_WIDTH - 1) == "scikit-learn"
    assert resolve_solver("keras", "logistic", 10, 3) == "keras"
    assert resolve_solver("keras", "svm", 10) == "scikit-learn"
    assert resolve_solver("keras", "paper", 10**6) == "scikit-learn"
    assert resolve_solver("scikit-learn", "logistic", 10**6) == "scikit-learn"
    with pytest.raises(ValueError, match="probe solver: received 'newton'"):
        resolve_solver("newton", "logistic", 10)


def _spy_on_fits(monkeypatch) -> list[int]:
    """The number of rows of every probe fit from now on."""
    rows: list[int] = []
    fit = probe_module.fit_quietly

    def counting(estimator, x, y):
        rows.append(len(x))
        return fit(estimator, x, y)

    monkeypatch.setattr(probe_module, "fit_quietly", counting)
    return rows


def test_c_is_chosen_on_a_subset_and_the_chosen_c_fits_every_image(monkeypatch):
    x, y = _problem(1200)
    rows = _spy_on_fits(monkeypatch)
    outcome = fit_probe((x[:1000], y[:1000]), (x[1000:], y[1000:]), Cs=[0.01, 0.1, 1.0],
                        choose_on=300)
    assert outcome.chosen_on == 300
    assert rows[:-1] == [300] * (len(rows) - 1) and len(rows) >= 4  # the grid, on the subset
    assert rows[-1] == 1000  # then the chosen C alone, on every training image
    assert fit_probe((x[:1000], y[:1000]), (x[1000:], y[1000:]), Cs=[0.1], choose_on=0).chosen_on == 0


def test_a_stratified_subset_keeps_every_class_in_proportion():
    y = np.repeat([0, 1, 2], [600, 300, 100])
    rows = stratified_subset(y, 100, seed=3)
    assert np.bincount(y[rows]).tolist() == [60, 30, 10]
    assert len(set(rows.tolist())) == 100 and rows.tolist() == sorted(rows.tolist())


def test_a_large_budget_chooses_c_on_one_held_out_fold_then_refits_on_all(monkeypatch):
    x, y = _problem(900)
    rows = _spy_on_fits(monkeypatch)
    outcome = fit_probe_cv((x, y), Cs=[0.01, 0.1, 1.0], folds=3, held_out_from=900,
                           choose_on=400)
    assert outcome.held_out == 300 and outcome.folds == 0 and outcome.chosen_on == 400
    assert set(rows[:-1]) == {400} and rows[-1] == 900  # the subset's grid, then the whole budget
    below = fit_probe_cv((x, y), Cs=[0.1], folds=3, held_out_from=901)
    assert below.held_out == 0 and below.folds == 3  # smaller budgets: k-fold cross-validation


def _peak_numpy_bytes(fit) -> int:
    """The most memory NumPy held at once, beyond what it held before, while ``fit()`` ran."""
    import tracemalloc

    tracemalloc.start()
    try:
        fit()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_float16_features_fit_as_float32_ones_do_without_a_float32_copy():
    x, y = _problem(20_000, width=100)
    half = x.astype("float16")
    exact = KerasLogisticRegression(C=0.1, epochs=2, min_steps=0).fit(x, y)
    halved = KerasLogisticRegression(C=0.1, epochs=2, min_steps=0)
    peak = _peak_numpy_bytes(lambda: halved.fit(half, y))
    # both read a batch at a time: neither makes a float32 copy of every row
    assert peak < x.nbytes / 2, (peak, x.nbytes)
    assert _peak_numpy_bytes(lambda: KerasLogisticRegression(C=0.1, epochs=2, min_steps=0).fit(
        x, y)) < x.nbytes / 2
    a, b = halved.coef_.ravel(), exact.coef_.ravel()
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.99
    assert np.mean(halved.predict(half) == exact.predict(x)) >= 0.98
    assert halved.decision_function(half[:5]).dtype == np.float32


def test_float16_features_are_standardised_in_float16_and_probed_as_float32_ones_are():
    from gantransfer.evaluation.linear import fit_scaler, standardise

    x, y = _problem(3000, width=20)
    x = x * 40 + 300  # far from zero: what standardising in float16 must survive
    half = x.astype("float16")
    scaled = standardise(fit_scaler("logistic", half), half)
    assert scaled.dtype == np.float16 and scaled.shape == x.shape
    np.testing.assert_allclose(scaled, fit_scaler("logistic", x).transform(x), atol=0.02)
    full = fit_probe((x[:2500], y[:2500]), (x[2500:], y[2500:]), Cs=[0.1], solver="keras")
    halved = fit_probe((half[:2500], y[:2500]), (half[2500:], y[2500:]), Cs=[0.1], solver="keras")
    assert np.mean(full.model.predict(x[2500:]) == halved.model.predict(half[2500:])) >= 0.97


def test_the_keras_solver_reads_every_row_once_an_epoch_in_a_new_batch_order():
    from gantransfer.evaluation.linear import _Batches

    order = np.random.default_rng(0).permutation(10)
    epochs = [np.array([2, 0, 1]), np.array([1, 2, 0])]
    batches = _Batches(np.arange(10, dtype="float16")[:, None], np.arange(10), order, 4, epochs)
    assert len(batches) == 6
    read = [batches[i] for i in range(len(batches))]
    assert all(x.dtype == np.float32 and np.array_equal(x[:, 0], y) for x, y in read)
    for epoch in range(2):  # each epoch: every row once, whole batches in that epoch's order
        rows = [list(y) for _, y in read[3 * epoch:3 * epoch + 3]]
        assert sorted(r for batch in rows for r in batch) == list(range(10))
        assert rows == [sorted(order[4 * b:4 * b + 4]) for b in epochs[epoch]]
