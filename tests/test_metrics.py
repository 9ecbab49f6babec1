"""classification_metrics against small cases worked out by hand, and against scikit-learn."""

import json

import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from gantransfer.evaluation import classification_metrics

KEYS = {"test_accuracy", "macro_f1", "per_class_accuracy", "confusion_matrix"}


def test_hand_computed_case_with_a_class_absent_from_y_true():
    # Class 2 is predicted once but never true: its recall is undefined, its F1 is 0 and counts.
    m = classification_metrics([0, 0, 1, 1, 1], [0, 1, 1, 1, 2], num_classes=3)
    assert set(m) == KEYS
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 1], [0, 0, 0]]
    assert m["test_accuracy"] == pytest.approx(3 / 5)
    assert m["per_class_accuracy"][0] == pytest.approx(1 / 2)
    assert m["per_class_accuracy"][1] == pytest.approx(2 / 3)
    assert m["per_class_accuracy"][2] is None
    # F1: class 0 has P=1, R=1/2 -> 2/3; class 1 has P=2/3, R=2/3 -> 2/3; class 2 -> 0.
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)


def test_class_absent_from_both_is_left_out_of_macro_f1():
    m = classification_metrics([0, 1, 1], [0, 1, 1], num_classes=4)
    assert m["test_accuracy"] == 1.0
    assert m["macro_f1"] == 1.0
    assert m["per_class_accuracy"] == [1.0, 1.0, None, None]
    assert m["confusion_matrix"] == [[1, 0, 0, 0], [0, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_perfect_accuracy():
    labels = [2, 0, 1, 2, 1, 0]
    m = classification_metrics(labels, labels, num_classes=3)
    assert m["test_accuracy"] == 1.0
    assert m["macro_f1"] == 1.0
    assert m["per_class_accuracy"] == [1.0, 1.0, 1.0]
    assert m["confusion_matrix"] == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]


def test_zero_accuracy():
    m = classification_metrics([0, 1, 0, 1], [1, 0, 1, 0], num_classes=2)
    assert m["test_accuracy"] == 0.0
    assert m["macro_f1"] == 0.0
    assert m["per_class_accuracy"] == [0.0, 0.0]
    assert m["confusion_matrix"] == [[0, 2], [2, 0]]


def test_scores_and_one_hot_rows_are_turned_into_labels():
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], dtype="float32")
    one_hot = np.eye(2)[[0, 1, 1]]
    m = classification_metrics(one_hot, scores, num_classes=2)
    assert m["confusion_matrix"] == [[1, 0], [1, 1]]
    assert m["test_accuracy"] == pytest.approx(2 / 3)


def test_values_are_plain_python_and_json_safe():
    m = classification_metrics(np.array([0, 1, 1], dtype="int32"), np.array([0, 1, 0]), num_classes=3)
    assert type(m["test_accuracy"]) is float and type(m["macro_f1"]) is float
    assert all(type(v) is int for row in m["confusion_matrix"] for v in row)
    json.dumps(m, allow_nan=False)


def test_agrees_with_scikit_learn_on_random_predictions():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 5, size=200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 5, size=200))
    m = classification_metrics(y_true, y_pred, num_classes=5)
    assert m["test_accuracy"] == pytest.approx(sk_metrics.accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(sk_metrics.f1_score(y_true, y_pred, average="macro"))
    assert m["per_class_accuracy"] == pytest.approx(
        list(sk_metrics.recall_score(y_true, y_pred, average=None)))
    assert np.array_equal(m["confusion_matrix"], sk_metrics.confusion_matrix(y_true, y_pred))


@pytest.mark.parametrize("y_true, y_pred, num_classes, message", [
    ([0, 1], [0], 2, "same length"),
    ([0, 3], [0, 1], 3, "outside"),
    ([0, -1], [0, 1], 3, "outside"),
    ([], [], 2, "zero examples"),
    ([0, 1], [0, 1], 0, "positive integer"),
    ([0.5, 1.0], [0, 1], 2, "integer class labels"),
    ([[0, 1, 2]], [[0, 1, 2]], 2, "columns"),
])
def test_bad_inputs_raise_clear_errors(y_true, y_pred, num_classes, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(y_true, y_pred, num_classes=num_classes)


def test_the_metrics_are_fields_of_a_strategy_result():
    from gantransfer.evaluation import StrategyResult

    m = classification_metrics([0, 1, 1], [0, 1, 0], num_classes=3)
    result = StrategyResult("scratch", 10, **m)
    assert result.to_row()["confusion_matrix"] == m["confusion_matrix"]
    assert result.to_row()["per_class_accuracy"] == m["per_class_accuracy"]
    assert result.test_accuracy == m["test_accuracy"] and result.macro_f1 == m["macro_f1"]
