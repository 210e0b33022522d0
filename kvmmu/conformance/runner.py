"""Find case files, run them on engines, and summarize.

The engines are passed in (objects following :class:`kvmmu.engine.Engine`); :func:`load_engine`
builds the two known ones by name, importing them only when asked.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from kvmmu.conformance.case import load_case
from kvmmu.conformance.check import CaseResult, check_case
from kvmmu.engine import Engine, Progress
from kvmmu.yamlio import DOCUMENT, InputError, find_yaml_files

# Engine name -> (module, class). Imported lazily: the spec pulls in Z3.
ENGINES: dict[str, tuple[str, str]] = {
    "impl": ("impl", "ImplEngine"),
    "spec": ("spec", "SpecEngine"),
}

LOAD = "(load)"  # the engine name of a result for a case that could not be loaded


def load_engine(name: str) -> Engine:
    """A new engine by name (``impl`` or ``spec``); raises KeyError for an unknown name."""
    module_name, class_name = ENGINES[name]
    engine: Engine = getattr(importlib.import_module(module_name), class_name)()
    return engine


def discover(paths: Iterable[Path | str]) -> list[Path]:
    """Case files under ``paths`` (see :func:`kvmmu.yamlio.find_yaml_files`)."""
    return find_yaml_files(paths)


def run_cases(
    paths: Iterable[Path | str], engines: Sequence[Engine], progress: Progress | None = None
) -> list[CaseResult]:
    """Every case under ``paths`` on every engine, in order. A case that does not load gives
    one result with engine ``(load)`` and the error; an engine that raises gives a result with
    the exception as error, so that one broken case does not hide the others. A case id (its
    file name) used again in another topic is a load error of the later file. ``progress``
    hears ``("cases", n)`` after each case."""
    results: list[CaseResult] = []
    first: dict[str, Path] = {}  # case id -> the file that first used it
    for done, path in enumerate(discover(paths)):
        if progress is not None:
            progress("cases", done)  # the cases finished before this one
        try:
            case = load_case(path)
            if case.id in first:  # FORMAT.md: ids are unique across topics
                raise InputError(
                    str(path),
                    1,
                    DOCUMENT,
                    f"duplicate case id {case.id!r} (first: {first[case.id]})",
                )
            first[case.id] = path
        except InputError as exc:
            results.append(CaseResult(path.stem, path, LOAD, error=str(exc)))
            continue
        for engine in engines:
            try:
                results.append(check_case(case, engine))
            except Exception as exc:  # reported per case, not fatal to the run
                error = f"{type(exc).__name__}: {exc}"
                results.append(CaseResult(case.id, path, engine.name, error=error))
    return results


def summary(results: Sequence[CaseResult]) -> str:
    """A readable report: one block per failing result, then the totals."""
    lines: list[str] = []
    for result in results:
        if result.passed:
            continue
        lines.append(f"FAIL {result.path} [{result.engine}]")
        if result.error is not None:
            lines.append(f"  {result.error}")
        lines += [f"  {mismatch}" for mismatch in result.mismatches]
    failed = sum(1 for r in results if not r.passed)
    cases = len({r.path for r in results})
    lines.append(
        f"{cases} cases, {len(results)} results: {len(results) - failed} passed, {failed} failed"
    )
    return "\n".join(lines)
