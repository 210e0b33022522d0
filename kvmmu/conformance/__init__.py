"""The conformance suite: YAML cases (``conformance/cases``), their loader, the checker that
compares an engine's replay with a case's expectation, and the runner."""

from kvmmu.conformance.case import Case, load_case
from kvmmu.conformance.check import CaseResult, check_case
from kvmmu.conformance.runner import discover, load_engine, run_cases, summary

__all__ = [
    "Case",
    "CaseResult",
    "check_case",
    "discover",
    "load_case",
    "load_engine",
    "run_cases",
    "summary",
]
