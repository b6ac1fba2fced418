"""The trust report: one self-contained HTML page plus ``report.json`` with every number."""

from promptlathe.report._analyze import AnalysisSizes, analyze
from promptlathe.report._build import build, plots_for, write
from promptlathe.report._cascade_page import write_cascade_page
from promptlathe.report._finished import FinishedRun, OpenRun, open_finished_run
from promptlathe.report._result_file import load_result
from promptlathe.report._run_report import report_run

__all__ = [
    "AnalysisSizes",
    "FinishedRun",
    "OpenRun",
    "analyze",
    "build",
    "load_result",
    "open_finished_run",
    "plots_for",
    "report_run",
    "write",
    "write_cascade_page",
]
