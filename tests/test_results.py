"""StrategyResult: normalised on construction, one row for CSV/JSON, read back from results.json."""

import json
import math

import numpy as np
import pytest

from gantransfer.evaluation.metrics import classification_metrics
from gantransfer.evaluation.results import CSV_COLUMNS, StrategyResult


def full_result() -> StrategyResult:
    return StrategyResult(
        strategy="gan-finetune", labels_per_class=np.int64(10), seed=np.int64(2), status="ok",
        **classification_metrics([0, 1, 1, 2], [0, 1, 2, 2], num_classes=3),
        train_time_s=np.float64(3.25), trainable_params=np.int64(1290), total_params=86_290,
        epochs=12, learning_rate=1e-4, C=None, phase_kept="finetune",
        history={"loss": [1.0, float("nan")], "val_accuracy": np.array([0.5, 0.75])},
        notes=["head first", "then everything"], model_file="models/m.keras", train_images=24,
        val_images=6)


def test_values_are_normalised_to_plain_python():
    result = full_result()
    assert (result.labels_per_class, result.seed) == (10, 2)
    assert type(result.seed) is int and type(result.train_time_s) is float
    assert type(result.trainable_params) is int
    assert result.history == {"loss": (1.0, None), "val_accuracy": (0.5, 0.75)}
    assert result.notes == ("head first", "then everything")
    assert result.confusion_matrix == ((1, 0, 0), (0, 1, 1), (0, 0, 1))
    assert result.has_results
    assert StrategyResult("scratch", "ALL").labels_per_class == "all"
    assert StrategyResult("scratch", 5, test_accuracy=float("nan")).test_accuracy is None


def test_to_row_then_from_row_round_trips_through_json():
    result = full_result()
    row = result.to_row()
    assert list(row)[:len(CSV_COLUMNS)] == CSV_COLUMNS
    text = json.dumps(row, allow_nan=False)
    again = StrategyResult.from_row(json.loads(text))
    assert again == result
    assert again.to_row() == row


def test_a_skipped_result_round_trips_with_its_defaults():
    skipped = StrategyResult("imagenet-frozen", 10, seed=0, status="skipped", reason="no weights",
                             train_images=40, val_images=10)
    row = skipped.to_row()
    assert row["test_accuracy"] is None and row["history"] == {} and row["notes"] == []
    assert StrategyResult.from_row(row) == skipped
    assert not skipped.has_results


def test_results_partial_json_rows_read_back():
    rows = [full_result().to_row(), StrategyResult("scratch", 5, status="failed").to_row()]
    document = json.loads(json.dumps({"results": rows}))
    assert [StrategyResult.from_row(row).status for row in document["results"]] == ["ok", "failed"]


@pytest.mark.parametrize("kwargs, error, message", [
    ({"strategy": "", "labels_per_class": 10}, ValueError, "needs the name of the strategy"),
    ({"strategy": "scratch", "labels_per_class": None}, ValueError, "needs labels_per_class"),
    ({"strategy": "scratch", "labels_per_class": 10, "status": "done"}, ValueError,
     "status must be one of ok, skipped, failed. Received: 'done'"),
])
def test_bad_results_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        StrategyResult(**kwargs)


@pytest.mark.parametrize("row, error, message", [
    (["scratch"], TypeError, "takes a dict .* Received: list"),
    ({"strategy": "scratch", "labels_per_class": 10, "accuracy": 0.5}, ValueError,
     "unknown result field\\(s\\) accuracy; expected some of strategy, labels_per_class"),
    ({"labels_per_class": 10}, ValueError, "needs 'strategy'"),
])
def test_bad_rows_are_refused(row, error, message):
    with pytest.raises(error, match=message):
        StrategyResult.from_row(row)


def test_a_result_is_frozen():
    result = StrategyResult("scratch", 10)
    with pytest.raises(AttributeError):
        result.test_accuracy = 1.0
    assert not math.isnan(StrategyResult("scratch", 10, macro_f1=np.float32(0.5)).macro_f1)
