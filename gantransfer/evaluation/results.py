"""One trained model's result, typed: :class:`StrategyResult`, and its row in results.csv/json.

The protocol makes one :class:`StrategyResult` per (strategy, labels per class, seed); summaries,
the verdict, the report and its figures read its attributes. ``to_row()`` is the one place a result
becomes a CSV/JSON row, and ``from_row()`` reads a row of results.json (or results.partial.json)
back.

Example:
    >>> result = StrategyResult("scratch", 10, seed=0, test_accuracy=0.5)
    >>> StrategyResult.from_row(result.to_row()) == result
    True
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import numpy as np

Budget = int | str  # a number of labels per class, or "all"

STATUSES = ("ok", "skipped", "failed")
# results.csv starts with these columns, in this order; the other scalar fields that any result
# carries follow, sorted by name.
CSV_COLUMNS = ["strategy", "labels_per_class", "seed", "status", "reason", "test_accuracy",
               "macro_f1", "train_time_s", "trainable_params", "total_params", "epochs",
               "learning_rate", "C", "phase_kept", "per_class_accuracy", "notes"]
# Too large for a table cell; they are in results.json.
CSV_EXCLUDED = ("history", "confusion_matrix")


def normalize_budget(value: Any) -> Budget:
    """Labels per class as an ``int``, or a string such as ``"all"``.

    Example:
        >>> normalize_budget("10"), normalize_budget(25.0), normalize_budget("All")
        (10, 25, 'all')
    """
    if isinstance(value, (bool, np.bool_)):
        return str(value).lower()
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    return text.lower()


def to_json_safe(value: Any) -> Any:
    """A copy of ``value`` that ``json.dumps(..., allow_nan=False)`` accepts.

    NumPy scalars and arrays become Python numbers and lists, NaN and infinities become ``None``,
    tuples and sets become lists, dict keys become strings, dataclasses become dicts, paths and
    anything else become strings.

    Example:
        >>> to_json_safe({"a": np.float32(0.5), "b": float("nan"), 3: (np.int64(1), None)})
        {'a': 0.5, 'b': None, '3': [1, None]}
    """
    if isinstance(value, dict):
        return {str(key): to_json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_safe(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return [to_json_safe(item) for item in sorted(value, key=str)]
    if isinstance(value, np.ndarray):
        return to_json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json_safe(dataclasses.asdict(value))
    return str(value)


def _number(value: Any, kind: type) -> Any:
    """A finite ``kind`` (int or float) from a Python or NumPy number; ``None`` when there is none.

    NaN, infinities and non-numbers are ``None``: a result without a number has none to show.
    """
    if value is None or isinstance(value, (bool, np.bool_)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    return int(number) if kind is int and number.is_integer() else number


def epsilon_key(value: Any) -> str:
    """An epsilon as the text key of ``robust_accuracy``: ``0.05``, ``0`` (the shortest form).

    Example:
        >>> epsilon_key(0.05), epsilon_key("0.10"), epsilon_key(0)
        ('0.05', '0.1', '0')
    """
    return f"{float(value):g}"


@dataclasses.dataclass(frozen=True)
class StrategyResult:
    """What one strategy gave at one label budget and seed: one row of results.csv.

    Only ``strategy`` and ``labels_per_class`` are required; a result that was skipped or failed
    carries its ``reason`` and no metrics. Numbers are stored as plain Python values (NumPy scalars
    are converted, NaN and infinities become ``None``), sequences as tuples.

    Attributes:
        strategy: The strategy's name (see :data:`gantransfer.registry.STRATEGIES`; other names
            are allowed, for results from elsewhere).
        labels_per_class: The label budget: an ``int`` or ``"all"``.
        seed: The seed that drew the budget and initialised the model.
        status: ``"ok"``, ``"skipped"`` or ``"failed"``.
        reason: Why a result was skipped or failed.
        test_accuracy: Fraction of correct test predictions, in [0, 1].
        macro_f1: Unweighted mean of the per-class F1 scores.
        per_class_accuracy: Recall of each class (``None`` for a class absent from the test set).
        confusion_matrix: Counts, rows true classes, columns predicted classes.
        train_time_s: Seconds spent training (and choosing hyperparameters).
        trainable_params: Parameters that training changed.
        total_params: All parameters of the saved classifier.
        epochs: Epochs trained, over every phase (0 for linear probes).
        learning_rate: The learning rate chosen on validation.
        C: The linear probe's inverse regularisation strength chosen on validation.
        phase_kept: For fine-tuning, the phase validation kept: ``"head"`` or ``"finetune"``.
        head: How the head read the trunk's features: ``"gap"``, ``"flatten"`` or ``"pooled"``.
        selection: How the learning rate or C, the phase and the epochs were chosen, and whether
            the final model was refitted on the whole budget.
        history: Per-epoch values by Keras metric name (``loss``, ``val_accuracy``, ...).
        notes: What was done, in words, for the report.
        model_file: Where the trained classifier was saved.
        train_images: Labeled images the final model trained on: the budget's training part,
            and under ``transfer.refit`` its validation images too (unless ``selection`` says the
            refit was discarded).
        val_images: Labeled images of the budget that validation chose on.
        adversarial_training: How the model was trained on adversarial examples, in words; None
            when it was not (``transfer.adversarial_training`` off, or a linear probe).
        robust_accuracy: Accuracy under attack on the test images, by epsilon (as text, on the
            [0, 1] pixel scale), with ``transfer.robustness``.
        robustness_attack: The attack behind ``robust_accuracy``, in words.

    Example:
        >>> result = StrategyResult("gan-frozen", "10", seed=np.int64(1), test_accuracy=0.75,
        ...                         notes=["frozen"])
        >>> result.labels_per_class, result.seed, result.notes, result.has_results
        (10, 1, ('frozen',), True)
        >>> StrategyResult("scratch", 10, status="skipped", reason="no GPU").has_results
        False
    """

    strategy: str
    labels_per_class: Budget
    seed: int | None = None
    status: str = "ok"
    reason: str | None = None
    test_accuracy: float | None = None
    macro_f1: float | None = None
    per_class_accuracy: tuple[float | None, ...] | None = None
    confusion_matrix: tuple[tuple[int, ...], ...] | None = None
    train_time_s: float | None = None
    trainable_params: int | None = None
    total_params: int | None = None
    epochs: int | None = None
    learning_rate: float | None = None
    C: float | None = None
    phase_kept: str | None = None
    head: str | None = None
    selection: str | None = None
    history: dict[str, tuple[float | None, ...]] = dataclasses.field(default_factory=dict)
    notes: tuple[str, ...] = ()
    model_file: str | None = None
    train_images: int | None = None
    val_images: int | None = None
    adversarial_training: str | None = None
    robust_accuracy: dict[str, float | None] = dataclasses.field(default_factory=dict)
    robustness_attack: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.strategy, str) or not self.strategy:
            raise ValueError("a StrategyResult needs the name of the strategy that made it. "
                             f"Received: strategy={self.strategy!r}")
        if self.labels_per_class is None or self.labels_per_class == "":
            raise ValueError(f"StrategyResult of {self.strategy!r} needs labels_per_class: an int "
                             f"or 'all'. Received: {self.labels_per_class!r}")
        status = "ok" if self.status is None else str(self.status)
        if status not in STATUSES:
            raise ValueError(f"StrategyResult of {self.strategy!r}: status must be one of "
                             f"{', '.join(STATUSES)}. Received: {self.status!r}")
        seed = self.seed
        if isinstance(seed, (np.integer, float, np.floating)) and not isinstance(seed, bool):
            seed = _number(seed, int)
        notes = self.notes if self.notes is not None else ()
        changes: dict[str, Any] = {
            "labels_per_class": normalize_budget(self.labels_per_class), "seed": seed,
            "status": status, "reason": None if self.reason is None else str(self.reason),
            "notes": (str(notes),) if isinstance(notes, str) else tuple(str(n) for n in notes),
            "history": {str(key): tuple(_number(v, float) for v in values)
                        for key, values in dict(self.history or {}).items()},
            "per_class_accuracy": None if self.per_class_accuracy is None else tuple(
                _number(v, float) for v in self.per_class_accuracy),
            "confusion_matrix": None if self.confusion_matrix is None else tuple(
                tuple(int(v) for v in row) for row in self.confusion_matrix),
            "phase_kept": None if self.phase_kept is None else str(self.phase_kept),
            "head": None if self.head is None else str(self.head),
            "selection": None if self.selection is None else str(self.selection),
            "model_file": None if self.model_file is None else str(self.model_file),
            "adversarial_training": None if self.adversarial_training is None
            else str(self.adversarial_training),
            "robust_accuracy": {epsilon_key(key): _number(value, float)
                                for key, value in dict(self.robust_accuracy or {}).items()},
            "robustness_attack": None if self.robustness_attack is None
            else str(self.robustness_attack),
        }
        for name in ("test_accuracy", "macro_f1", "train_time_s", "learning_rate", "C"):
            changes[name] = _number(getattr(self, name), float)
        for name in ("trainable_params", "total_params", "epochs", "train_images", "val_images"):
            changes[name] = _number(getattr(self, name), int)
        for name, value in changes.items():
            object.__setattr__(self, name, value)  # frozen: normalised once, here

    @property
    def has_results(self) -> bool:
        """Whether this is a finished model with a test accuracy (status ``"ok"``)."""
        return self.status == "ok" and self.test_accuracy is not None

    def to_row(self) -> dict[str, Any]:
        """The result as a JSON-ready dict: the CSV columns first, then the other fields.

        Every field is there, ``None`` when it has no value; NaN never appears.

        Example:
            >>> row = StrategyResult("scratch", 10, seed=0, test_accuracy=0.5).to_row()
            >>> list(row)[:6], row["notes"], row["history"]
            (['strategy', 'labels_per_class', 'seed', 'status', 'reason', 'test_accuracy'], [], {})
        """
        names = [f.name for f in dataclasses.fields(self)]
        ordered = CSV_COLUMNS + [name for name in names if name not in CSV_COLUMNS]
        return {name: to_json_safe(getattr(self, name)) for name in ordered}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StrategyResult:
        """Reads back a row that :meth:`to_row` wrote (a result in results.json).

        Missing fields take their defaults; an unknown key is an error, so a misspelt field is
        not silently lost.

        Args:
            row: One entry of the ``results`` list of results.json or results.partial.json.

        Returns:
            The :class:`StrategyResult`.

        Raises:
            TypeError: If ``row`` is not a mapping.
            ValueError: If it has unknown keys, or lacks ``strategy`` or ``labels_per_class``.

        Example:
            >>> StrategyResult.from_row({"strategy": "pixels-linear", "labels_per_class": "all",
            ...                          "status": "skipped", "reason": "no time"}).reason
            'no time'
        """
        if not isinstance(row, Mapping):
            raise TypeError(f"StrategyResult.from_row takes a dict (one entry of results.json's "
                            f"'results'). Received: {type(row).__name__}")
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(str(key) for key in row if key not in fields)
        if unknown:
            raise ValueError(f"unknown result field(s) {', '.join(unknown)}; expected some of "
                             f"{', '.join(fields)}")
        for required in ("strategy", "labels_per_class"):
            if row.get(required) in (None, ""):
                raise ValueError(f"a result row needs {required!r}. Received keys: "
                                 f"{sorted(str(key) for key in row)}")
        values = {key: value for key, value in row.items() if value is not None}
        return cls(**values)
