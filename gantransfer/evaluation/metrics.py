"""Classification metrics for one trained model, as plain JSON-ready Python values."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as sk_metrics


def _as_labels(values: Any, name: str, num_classes: int) -> np.ndarray:
    """Integer class labels from labels ``(N,)`` or scores/one-hot rows ``(N, num_classes)``."""
    array = np.asarray(values)
    if array.ndim == 2:
        if array.shape[1] != num_classes:
            raise ValueError(f"{name} has {array.shape[1]} columns of scores but num_classes="
                             f"{num_classes}; pass labels of shape (N,) or scores of shape (N, "
                             f"{num_classes}). Received: shape={array.shape}")
        return np.argmax(array, axis=1)
    if array.ndim != 1:
        raise ValueError(f"{name} must be class labels of shape (N,) or scores of shape "
                         f"(N, num_classes). Received: shape={array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating) or not np.all(np.mod(array, 1) == 0):
            raise ValueError(f"{name} must hold integer class labels. Received: "
                             f"dtype={array.dtype}, first values={array[:5].tolist()}")
    labels = array.astype("int64")
    outside = labels[(labels < 0) | (labels >= num_classes)]
    if outside.size:
        raise ValueError(f"{name} holds labels outside [0, {num_classes - 1}] for num_classes="
                         f"{num_classes}. Received: {sorted(set(outside.tolist()))[:10]}")
    return labels


def classification_metrics(y_true: Any, y_pred: Any, num_classes: int) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class accuracy and the confusion matrix of one model's predictions.

    Every class ``0 .. num_classes - 1`` gets a row and a column in the confusion matrix and an
    entry in ``per_class_accuracy``, even one that appears in neither ``y_true`` nor ``y_pred``.

    Args:
        y_true: True labels, shape ``(N,)``; one-hot rows ``(N, num_classes)`` are accepted too.
        y_pred: Predicted labels, shape ``(N,)``, or scores/probabilities ``(N, num_classes)``
            (their argmax is the prediction).
        num_classes: Number of classes of the task.

    Returns:
        A dict with

        - ``test_accuracy`` (float): fraction of correct predictions.
        - ``macro_f1`` (float): unweighted mean of the per-class F1 scores over the classes that
          occur in ``y_true`` or ``y_pred``; a class absent from both carries no evidence and is
          left out, so a perfect classifier scores 1.0 even when the test set lacks a class. A
          class that is predicted but never true scores F1 = 0 and counts.
        - ``per_class_accuracy`` (list[float | None]): recall of each class (its diagonal entry
          over its row sum); ``None`` for a class absent from ``y_true``, where recall is
          undefined (it becomes ``null`` in JSON).
        - ``confusion_matrix`` (list[list[int]]): ``num_classes x num_classes`` counts, rows are
          true classes and columns predicted classes.

    Raises:
        ValueError: If the inputs are empty, differ in length, have the wrong shape, or hold
            labels outside ``[0, num_classes)``.

    Example:
        >>> m = classification_metrics([0, 0, 1, 1], [0, 1, 1, 1], num_classes=3)
        >>> m["test_accuracy"], m["per_class_accuracy"]
        (0.75, [0.5, 1.0, None])
        >>> m["confusion_matrix"]
        [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
        >>> round(m["macro_f1"], 4)
        0.7333
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 1:
        raise ValueError("num_classes must be a positive integer. "
                         f"Received: num_classes={num_classes!r}")
    num_classes = int(num_classes)
    true = _as_labels(y_true, "y_true", num_classes)
    pred = _as_labels(y_pred, "y_pred", num_classes)
    if true.shape[0] != pred.shape[0]:
        raise ValueError(f"y_true and y_pred must have the same length. Received: "
                         f"len(y_true)={true.shape[0]}, len(y_pred)={pred.shape[0]}")
    if true.shape[0] == 0:
        raise ValueError("cannot compute metrics on zero examples; pass a non-empty test set")

    labels = list(range(num_classes))
    matrix = sk_metrics.confusion_matrix(true, pred, labels=labels)
    support = matrix.sum(axis=1)
    per_class = [float(matrix[c, c] / support[c]) if support[c] else None for c in labels]

    f1 = sk_metrics.f1_score(true, pred, labels=labels, average=None, zero_division=0.0)
    seen = np.zeros(num_classes, dtype=bool)
    seen[true] = True
    seen[pred] = True
    return {
        "test_accuracy": float(sk_metrics.accuracy_score(true, pred)),
        "macro_f1": float(np.mean(f1[seen])),
        "per_class_accuracy": per_class,
        "confusion_matrix": matrix.astype(int).tolist(),
    }
