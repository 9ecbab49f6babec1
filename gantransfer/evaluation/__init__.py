"""Evaluation: pure metrics. Classification metrics, typed results, FID/KID math, and statistics
over seeds.

Nothing here loads configs, data or models from disk; the workflows above do that and hand the
numbers down.
"""

from gantransfer.evaluation.metrics import classification_metrics
from gantransfer.evaluation.results import StrategyResult
from gantransfer.evaluation.summary import (comparisons, headline, paired_interval,
                                            render_comparison, render_flag, sanity_flags,
                                            summarize, verdict)

__all__ = ["StrategyResult", "classification_metrics", "comparisons", "headline",
           "paired_interval", "render_comparison", "render_flag", "sanity_flags", "summarize",
           "verdict"]
