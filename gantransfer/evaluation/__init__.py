"""Evaluation: classification metrics, summaries over seeds, verdicts and the comparison report."""

from gantransfer.evaluation.metrics import classification_metrics
from gantransfer.evaluation.report import to_json_safe, write_report
from gantransfer.evaluation.summary import compare, render_comparison, summarize, verdict

__all__ = ["classification_metrics", "compare", "render_comparison", "summarize", "to_json_safe",
           "verdict", "write_report"]
