"""The kernel's bug history (kernel-facts.md 8.3, K1 to K12) as a regression suite.

``docs/kernel-history.yaml`` (format ``kvmmu-history/1``, ``docs/formats/history.md``) lists one
row per known-answer case: the kernel commit(s), the bug, the invariant or liveness property it
breaks, and a status:

- ``stated``: the row names proof obligations (``proofs/*.yaml``) of the buggy form, each
  expecting ``violated`` (a counterexample, or a lasso for a liveness property), and of the fixed
  form, each expecting ``proved``. :func:`run_row` runs them through the obligation machinery
  (:func:`kvmmu.obligations.run`): the verdicts shown are Z3's, never copied from the file, and a
  row passes only when every obligation gives the verdict it expects.
- ``not stated``: the model cannot state it yet; the row says why.
- ``benchmark``: a performance fix (K12), shown as a count of wasted root reloads computed on the
  executable model (:mod:`kvmmu.reloads`); the row passes when the buggy request wastes reloads
  and the fixed one wastes fewer.

A file whose rows name unknown obligations, or obligations whose expectation does not fit the
form (a buggy form expecting ``proved``), is bad input (:class:`kvmmu.yamlio.InputError`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from kvmmu.obligations import Obligation, Outcome, load_manifest, outcome_json
from kvmmu.obligations import run as run_obligation
from kvmmu.reloads import Count, count
from kvmmu.vocab import INVARIANTS, LIVENESS_PROPERTIES, Config
from kvmmu.yamlio import (
    Document,
    InputError,
    as_int,
    as_list,
    as_mapping,
    as_name,
    as_str,
    child_path,
    item_path,
    load_yaml,
    parse_config,
)

FORMAT = "kvmmu-history/1"
STATUSES = ("stated", "not stated", "benchmark")
TOP_REQUIRED = ("format", "description", "proofs", "rows")
ROW_REQUIRED = ("id", "commits", "title", "version", "bug", "status", "story")
ROW_OPTIONAL = ("invariants", "buggy", "fixed", "reason", "benchmark")
# the fields each status needs, and those it must not have (a reason on a stated row would be
# a claim that nothing checks)
STATUS_FIELDS = {
    "stated": ("buggy", "fixed"),
    "not stated": ("reason",),
    "benchmark": ("benchmark",),
}
BENCHMARK_KEYS = ("config", "depth")
MAX_BENCHMARK_DEPTH = 40

_ROW_ID = re.compile(r"K[1-9][0-9]*")
_COMMIT = re.compile(r"[0-9a-f]{7,40}")
_NAME = re.compile(r"[a-z][a-z0-9_]*")
KNOWN_PROPERTIES = (*INVARIANTS, *LIVENESS_PROPERTIES)


@dataclass(frozen=True)
class Benchmark:
    """A ``benchmark`` row's run: wasted reloads under ``request: reload`` vs ``free_obsolete``."""

    config: Config
    depth: int


@dataclass(frozen=True)
class Row:
    """One known-answer case. ``buggy`` and ``fixed`` are the obligations of a ``stated`` row;
    ``invariants`` may name properties the model does not have yet on other rows."""

    id: str
    line: int
    commits: tuple[str, ...]
    title: str
    version: str
    bug: str
    status: str
    story: str
    invariants: tuple[str, ...] = ()
    buggy: tuple[Obligation, ...] = ()
    fixed: tuple[Obligation, ...] = ()
    reason: str = ""
    benchmark: Benchmark | None = None


@dataclass(frozen=True)
class History:
    file: Path
    description: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class RowResult:
    """A row and what the model showed for it (nothing for a ``not stated`` row)."""

    row: Row
    buggy: tuple[Outcome, ...] = ()
    fixed: tuple[Outcome, ...] = ()
    counts: tuple[Count, Count] | None = None  # a benchmark: (reload, free_obsolete)

    @property
    def mismatches(self) -> tuple[str, ...]:
        """Why the row is not as expected: one text per obligation (or benchmark) that is not."""
        found = [
            f"{o.obligation.id}: {o.mismatch}"
            for o in (*self.buggy, *self.fixed)
            if o.mismatch is not None
        ]
        if self.counts is not None:
            buggy, fixed = self.counts
            if buggy.wasted == 0:
                found.append("request: reload wastes no reload here: nothing to show")
            elif fixed.wasted >= buggy.wasted:
                found.append(
                    f"request: free_obsolete wastes {fixed.wasted} reloads, reload {buggy.wasted}"
                )
        return tuple(found)

    @property
    def passed(self) -> bool | None:
        """True or False for a row the model checks, None for a ``not stated`` one."""
        return None if self.row.status == "not stated" else not self.mismatches


# --- loading -------------------------------------------------------------------------------------


def load_history(path: Path | str) -> History:
    """Read and check a history file and the obligations it names; raises :class:`InputError`."""
    doc = load_yaml(path)
    top = as_mapping(doc, "", doc.data, TOP_REQUIRED)
    fmt = as_str(doc, "format", top["format"])
    if fmt != FORMAT:
        raise doc.error("format", f"unsupported format {fmt!r} (this loader reads {FORMAT})")
    description = as_str(doc, "description", top["description"]).strip()
    obligations = _obligations(doc, Path(path).parent, top["proofs"])
    items = as_list(doc, "rows", top["rows"])
    if not items:
        raise doc.error("rows", "no rows")
    rows: list[Row] = []
    for index, item in enumerate(items):
        row = _row(doc, item_path("rows", index), item, obligations)
        if any(r.id == row.id for r in rows):
            raise doc.error(child_path(item_path("rows", index), "id"), f"duplicate id {row.id!r}")
        rows.append(row)
    return History(Path(path), description, tuple(rows))


def _obligations(doc: Document, folder: Path, value: object) -> dict[str, Obligation]:
    """The obligations of the ``proofs`` paths (relative to the history file), by id."""
    paths = as_list(doc, "proofs", value)
    if not paths:
        raise doc.error("proofs", "no obligation files or folders")
    resolved = []
    for index, item in enumerate(paths):
        where = item_path("proofs", index)
        # relative to the history file's folder, shown without "docs/../"
        given = Path(os.path.normpath(folder / as_name(doc, where, item)))
        if not given.exists():
            raise doc.error(where, f"no such file or folder: {given}")
        resolved.append(given)
    # the manifest rule belongs to `kvmmu prove proofs/`; here only the ids matter
    return {ob.id: ob for ob in load_manifest(resolved, manifest_rule=False)}


def _row(doc: Document, path: str, value: object, obligations: dict[str, Obligation]) -> Row:
    fields = as_mapping(doc, path, value, ROW_REQUIRED, ROW_OPTIONAL)
    row_id = as_str(doc, child_path(path, "id"), fields["id"])
    if not _ROW_ID.fullmatch(row_id):
        raise doc.error(child_path(path, "id"), f"expected K and a number (K1), got {row_id!r}")
    status = as_str(doc, child_path(path, "status"), fields["status"])
    if status not in STATUSES:
        known = ", ".join(STATUSES)
        raise doc.error(child_path(path, "status"), f"expected one of {known}, got {status!r}")
    for name in ("buggy", "fixed", "reason", "benchmark"):
        needed = name in STATUS_FIELDS[status]
        if needed and name not in fields:
            raise doc.error(path, f"a {status} row needs {name!r}")
        if not needed and name in fields:
            raise doc.error(child_path(path, name), f"a {status} row has no {name}")
    where = child_path(path, "invariants")
    invariants = _invariants(doc, where, fields.get("invariants", []))
    if status == "stated":
        if not invariants:
            raise doc.error(path, "a stated row needs 'invariants'")
        unknown = [name for name in invariants if name not in KNOWN_PROPERTIES]
        if unknown:
            known = ", ".join(KNOWN_PROPERTIES)
            raise doc.error(where, f"unknown invariant {unknown[0]!r} (known: {known})")
    buggy: tuple[Obligation, ...] = ()
    fixed: tuple[Obligation, ...] = ()
    if status == "stated":
        buggy = _form(doc, path, "buggy", fields["buggy"], obligations, invariants)
        fixed = _form(doc, path, "fixed", fields["fixed"], obligations, invariants)
    bench = None
    if status == "benchmark":
        bench = _benchmark(doc, child_path(path, "benchmark"), fields["benchmark"])
    reason = ""
    if status == "not stated":
        reason = as_name(doc, child_path(path, "reason"), fields["reason"]).strip()
    return Row(
        id=row_id,
        line=doc.line(path),
        commits=_commits(doc, child_path(path, "commits"), fields["commits"]),
        title=as_name(doc, child_path(path, "title"), fields["title"]).strip(),
        version=as_name(doc, child_path(path, "version"), fields["version"]).strip(),
        bug=_one_line(doc, child_path(path, "bug"), fields["bug"]),
        status=status,
        story=as_name(doc, child_path(path, "story"), fields["story"]).strip(),
        invariants=invariants,
        buggy=buggy,
        fixed=fixed,
        reason=reason,
        benchmark=bench,
    )


def _one_line(doc: Document, path: str, value: object) -> str:
    text = as_name(doc, path, value).strip()
    if "\n" in text:
        raise doc.error(path, "one line (a table cell), not several")
    return text


def _commits(doc: Document, path: str, value: object) -> tuple[str, ...]:
    items = as_list(doc, path, value)
    if not items:
        raise doc.error(path, "at least one commit id")
    commits = []
    for index, item in enumerate(items):
        text = as_str(doc, item_path(path, index), item)
        if not _COMMIT.fullmatch(text):
            raise doc.error(item_path(path, index), f"expected a commit id (hex), got {text!r}")
        commits.append(text)
    return tuple(commits)


def _invariants(doc: Document, path: str, value: object) -> tuple[str, ...]:
    """Names of invariants or liveness properties: known ones (kvmmu.vocab), or, on a row the
    model does not check, the name a later issue will give (shown as not in the model yet)."""
    names = []
    for index, item in enumerate(as_list(doc, path, value)):
        name = as_str(doc, item_path(path, index), item)
        if not _NAME.fullmatch(name):
            raise doc.error(item_path(path, index), f"not an invariant name: {name!r}")
        names.append(name)
    return tuple(names)


def _form(
    doc: Document,
    path: str,
    form: str,
    value: object,
    obligations: dict[str, Obligation],
    invariants: tuple[str, ...],
) -> tuple[Obligation, ...]:
    """The obligations of a stated row's buggy or fixed form: each exists, checks one of the
    row's invariants and expects what the form means (buggy: violated; fixed: proved); every
    invariant of the row has one."""
    where = child_path(path, form)
    items = as_list(doc, where, value)
    if not items:
        raise doc.error(where, f"no obligation for the {form} form")
    expected = "violated" if form == "buggy" else "proved"
    found = []
    for index, item in enumerate(items):
        sub = item_path(where, index)
        ob_id = as_name(doc, sub, item)
        ob = obligations.get(ob_id)
        if ob is None:
            raise doc.error(sub, f"unknown obligation id {ob_id!r} (not in the proofs files)")
        if ob.expect != expected:
            what = "a counterexample or a lasso" if form == "buggy" else "a proof"
            raise doc.error(
                sub,
                f"the {form} form needs {what}: {ob_id!r} expects {ob.expect}, not {expected}",
            )
        if ob.invariant not in invariants:
            raise doc.error(sub, f"{ob_id!r} checks {ob.invariant}, not one of the row's")
        found.append(ob)
    for name in invariants:
        if not any(ob.invariant == name for ob in found):
            raise doc.error(where, f"no obligation of the {form} form checks {name}")
    return tuple(found)


def _benchmark(doc: Document, path: str, value: object) -> Benchmark:
    fields = as_mapping(doc, path, value, BENCHMARK_KEYS)
    config = parse_config(doc, child_path(path, "config"), fields["config"])
    if config.max_zaps is None:
        # the count walks the whole state graph: an unbounded zapper would still be finite
        # (generation: bit), but the reload counts would depend on nothing the file says
        raise doc.error(child_path(path, "config"), "max_zaps must be a number for a count")
    depth = as_int(doc, child_path(path, "depth"), fields["depth"], minimum=1)
    if depth > MAX_BENCHMARK_DEPTH:
        raise doc.error(child_path(path, "depth"), f"at most {MAX_BENCHMARK_DEPTH}, got {depth}")
    return Benchmark(config, depth)


def select(history: History, only: Sequence[str]) -> tuple[Row, ...]:
    """The rows named by ``only`` (all when empty), in file order; ValueError for an unknown id."""
    if not only:
        return history.rows
    wanted = {name.strip().upper() for name in only}
    known = {row.id for row in history.rows}
    unknown = sorted(wanted - known)
    if unknown:
        rows = ", ".join(r.id for r in history.rows)
        raise ValueError(f"--only {', '.join(unknown)}: no such row (rows: {rows})")
    return tuple(row for row in history.rows if row.id in wanted)


# --- running -------------------------------------------------------------------------------------


def work(row: Row) -> int:
    """The number of runs a row takes (obligations, or the two counts of a benchmark)."""
    return len(row.buggy) + len(row.fixed) + (2 if row.benchmark is not None else 0)


def run_row(row: Row, progress: Callable[[str], None] | None = None) -> RowResult:
    """Run the obligations (or the benchmark) of ``row``; ``progress`` hears each one's name
    when it is done."""

    def done(what: str) -> None:
        if progress is not None:
            progress(what)

    def each(obs: tuple[Obligation, ...]) -> tuple[Outcome, ...]:
        outcomes = []
        for ob in obs:
            outcomes.append(run_obligation(ob))
            done(ob.id)
        return tuple(outcomes)

    if row.benchmark is not None:
        b = row.benchmark
        buggy = count(b.config, "reload", b.depth)
        done(f"{row.id} reload")
        fixed = count(b.config, "free_obsolete", b.depth)
        done(f"{row.id} free_obsolete")
        return RowResult(row, counts=(buggy, fixed))
    return RowResult(row, each(row.buggy), each(row.fixed))


# --- reporting -----------------------------------------------------------------------------------

HEADER = ("K", "kernel commit", "bug", "invariant", "buggy form", "fix", "status")


def verdict_cell(outcome: Outcome) -> str:
    """``violated in 13 steps``, ``lasso of 25 steps (loop 7)``, ``proved (k = 1)``, ...; with
    what was expected when it differs."""
    v, ob = outcome.verdict, outcome.obligation
    if v.verdict == "violated" and ob.liveness:
        loop = f" (loop {len(v.trace) - v.loop})" if v.loop is not None else ""
        text = f"lasso of {len(v.trace)} steps{loop}"
    elif v.verdict == "violated":
        text = f"violated in {len(v.trace)} steps"
    elif v.verdict == "proved":
        how = "k-liveness, " if ob.liveness else ""
        text = f"proved ({how}k = {v.k})" if v.k is not None else "proved"
    elif v.verdict == "holds":
        text = f"holds to depth {v.bound}"
    else:
        text = v.verdict
    return text if outcome.mismatch is None else f"{text} [{outcome.mismatch}]"


def _form_cell(outcomes: tuple[Outcome, ...]) -> str:
    """The verdicts of one form, each labelled by what tells it from the others (its
    invariant, its vCPUs) when there are several."""
    if len(outcomes) == 1:
        return verdict_cell(outcomes[0])
    several_invariants = len({o.obligation.invariant for o in outcomes}) > 1
    several_configs = len({o.obligation.config.vcpus for o in outcomes}) > 1
    parts = []
    for o in outcomes:
        label = []
        if several_invariants:
            label.append(o.obligation.invariant)
        if several_configs:
            label.append(",".join(o.obligation.config.vcpus))
        prefix = f"{' '.join(label)}: " if label else ""
        parts.append(prefix + verdict_cell(o))
    return "; ".join(parts)


def _count_cell(c: Count) -> str:
    share = f" ({100 * c.wasted / c.unloads:.1f} %)" if c.unloads else ""
    return f"{c.request}: {c.wasted} of {c.unloads} unloads drop a valid root{share}"


def invariant_cell(row: Row) -> str:
    if not row.invariants:
        return "-"
    return ", ".join(
        name if name in KNOWN_PROPERTIES else f"{name} (not in the model yet)"
        for name in row.invariants
    )


def status_cell(result: RowResult) -> str:
    row = result.row
    if row.status == "not stated":
        return f"not stated: {row.reason}"
    return f"{row.status}: " + ("as expected" if result.passed else "NOT as expected")


def cells(result: RowResult) -> list[str]:
    """The row's cells, in :data:`HEADER` order."""
    row = result.row
    if result.counts is not None:
        buggy, fixed = (_count_cell(c) for c in result.counts)
    elif row.status == "stated":
        buggy, fixed = _form_cell(result.buggy), _form_cell(result.fixed)
    else:
        buggy = fixed = "-"
    return [
        row.id,
        ", ".join(row.commits),
        row.bug,
        invariant_cell(row),
        buggy,
        fixed,
        status_cell(result),
    ]


def exit_status(results: Sequence[RowResult]) -> int:
    """0 when every row the model checks is as expected, else 1."""
    return 1 if any(r.passed is False for r in results) else 0


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(history: History, results: Sequence[RowResult]) -> str:
    """The table and the rows' stories as a Markdown document (no timings: it is committed)."""
    lines = [
        "# The kernel's history as a regression suite",
        "",
        f"<!-- generated by `kvmmu history --markdown FILE` from {history.file.name}: "
        "edit that file and run it again -->",
        "",
        history.description,
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(_escape(c) for c in cells(r)) + " |" for r in results]
    checked = [r for r in results if r.passed is not None]
    lines += [
        "",
        f"{sum(1 for r in checked if r.passed)} of {len(checked)} checked rows as expected; "
        f"{len(results) - len(checked)} not stated.",
        "",
    ]
    for r in results:
        row = r.row
        lines += [f"## {row.id}: {row.title}", ""]
        lines += [f"Commit {', '.join(row.commits)}, {row.version}. Bug: {row.bug}.", ""]
        if r.buggy or r.fixed:
            lines += [f"- buggy form: {_obligation_line(o)}" for o in r.buggy]
            lines += [f"- fix: {_obligation_line(o)}" for o in r.fixed]
            lines.append("")
        if row.status == "not stated":
            lines += [f"Not stated: {row.reason}.", ""]
        if r.counts is not None:
            lines += [f"- {_count_cell(c)}" for c in r.counts]
            lines.append("")
        lines += [row.story, ""]
    return "\n".join(lines)


def _obligation_line(o: Outcome) -> str:
    """``seed-x`` (seed.yaml; v5.16-rc4, vcpus special,sp): violated in 7 steps."""
    ob = o.obligation
    where = f"{ob.file.name}; {ob.variant.name}, vcpus {','.join(ob.config.vcpus)}"
    return f"`{ob.id}` ({where}): {verdict_cell(o)}"


def result_json(result: RowResult) -> dict[str, object]:
    row = result.row
    data: dict[str, object] = {
        "id": row.id,
        "commits": list(row.commits),
        "title": row.title,
        "version": row.version,
        "bug": row.bug,
        "invariants": list(row.invariants),
        "status": row.status,
        "passed": result.passed,
        "mismatches": list(result.mismatches),
        "buggy": [outcome_json(o) for o in result.buggy],
        "fixed": [outcome_json(o) for o in result.fixed],
    }
    if row.reason:
        data["reason"] = row.reason
    if result.counts is not None:
        data["benchmark"] = [asdict(c) for c in result.counts]
    return data


__all__ = [
    "FORMAT",
    "Benchmark",
    "History",
    "InputError",
    "Row",
    "RowResult",
    "cells",
    "exit_status",
    "load_history",
    "markdown",
    "result_json",
    "run_row",
    "select",
    "work",
]
