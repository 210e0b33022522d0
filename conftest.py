"""Collect the conformance cases as pytest items: every ``conformance/cases/**/*.yaml`` is a file
with one item per engine, e.g. ``conformance/cases/seed/paolo_special.yaml::impl`` and ``::spec``.
A failing item prints the case's mismatch list (or its load error), not a traceback."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from kvmmu.conformance.case import Case, load_case
from kvmmu.conformance.check import CaseResult, check_case
from kvmmu.conformance.runner import ENGINES
from kvmmu.engine import Engine
from kvmmu.yamlio import InputError

CASES_DIR = Path(__file__).resolve().parent / "conformance" / "cases"

# One engine object per name for the whole session: building one may be costly (Z3).
_engines: dict[str, Engine] = {}


class CaseMismatch(Exception):
    """A case whose expectation an engine does not meet."""

    def __init__(self, result: CaseResult) -> None:
        super().__init__("\n".join(result.mismatches))
        self.result = result


def _engine(name: str) -> Engine:
    """The engine named ``name``, built once per session (the spec's Z3 contexts are reused)."""
    if name not in _engines:
        module_name, class_name = ENGINES[name]
        _engines[name] = getattr(importlib.import_module(module_name), class_name)()
    return _engines[name]


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix == ".yaml" and file_path.is_relative_to(CASES_DIR):
        collector: CaseFile = CaseFile.from_parent(parent, path=file_path)
        return collector
    return None


class CaseFile(pytest.File):
    """One case file: loaded once, one item per engine."""

    def collect(self) -> list[pytest.Item]:
        try:
            case: Case | InputError = load_case(self.path)
        except InputError as exc:
            case = exc
        return [CaseItem.from_parent(self, name=name, case=case) for name in ENGINES]


class CaseItem(pytest.Item):
    def __init__(self, *, case: Case | InputError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        if isinstance(self.case, InputError):
            raise self.case
        result = check_case(self.case, _engine(self.name))
        if not result.passed:
            raise CaseMismatch(result)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str:
        if isinstance(excinfo.value, CaseMismatch):
            result = excinfo.value.result
            head = f"{self.path.name} on {result.engine}: {len(result.mismatches)} mismatch(es)"
            return "\n".join([head, *(f"  {m}" for m in result.mismatches)])
        if isinstance(excinfo.value, InputError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.path.name}::{self.name}"
