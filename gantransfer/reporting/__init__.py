"""The comparison report: results.csv, results.json, report.md, a self-contained report.html and its
figures."""

from gantransfer.reporting.report import to_json_safe, write_report

__all__ = ["to_json_safe", "write_report"]
