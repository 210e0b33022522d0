"""What-if exploration (``kvmmu explore``): a sweep of the Z3 spec over variants, configurations
and invariants, reported as a verdict matrix.

A *sweep* is a list of rows (a variant under a configuration) and a list of invariants (the
columns). The variants are presets (or variant specs) with fixed knob overrides on top, times the
cartesian product of the values of the *varied* knobs. Each cell is one call of
:func:`kvmmu.prover.check` for one invariant, so a cell's verdict is exactly what ``kvmmu prove``
says for that problem. Cells run in parallel (a process pool, or a Dask cluster); each job builds
its own Z3 context, and the results are put back in row-major order, so the matrix does not
depend on the number of jobs.

A sweep *reports*, it does not judge: a violation is a finding, not a failure. The exit status is
0 when every cell got an answer, 3 when some cell is ``unknown`` or an ``error``.

Sweep files (``--sweep FILE.yaml``) have format ``kvmmu-sweep/1``, described in
``docs/formats/``; every error names the file, the line and the field.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, TextIO

from kvmmu.engine import Replay, StateValue
from kvmmu.prover import ENGINES, EXIT_STATUS, Verdict, check
from kvmmu.vocab import (
    INVARIANTS,
    KNOBS,
    LIVENESS_PROPERTIES,
    PRESETS,
    Config,
    KnobValue,
    Problem,
    Variant,
    knob_error,
    make_variant,
    override,
    variant_spec,
)

FORMAT = "kvmmu-sweep/1"
JSON_FORMAT = "kvmmu-explore/1"
DEFAULT_ENGINE = "kind"
DEFAULT_BOUND: Mapping[str, int] = MappingProxyType({"kind": 30, "bmc": 20})
DEFAULT_TIMEOUT = 300.0
EXIT_RAN = 0
EXIT_UNKNOWN = 3

# the verdicts in the order a summary lists them
VERDICT_ORDER = (
    "proved",
    "holds",
    "violated",
    "not_inductive",
    "not_proved",
    "vacuous",
    "unknown",
    "error",
)
# a liveness column (docs/protocol.md 6.11): k-liveness, else the shortest lasso up to this depth
LASSO_DEPTH = 30


# --- the sweep -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One row of the matrix: a variant under a configuration."""

    variant: Variant
    config: Config


@dataclass(frozen=True)
class Sweep:
    """What to explore: rows times invariants, with one engine and bound for every cell."""

    rows: tuple[Row, ...]
    invariants: tuple[str, ...] = INVARIANTS
    engine: str = DEFAULT_ENGINE
    bound: int = DEFAULT_BOUND[DEFAULT_ENGINE]
    timeout_s: float = DEFAULT_TIMEOUT
    description: str = ""

    @property
    def configs(self) -> tuple[Config, ...]:
        """The distinct configurations, in order of first appearance."""
        return tuple(dict.fromkeys(row.config for row in self.rows))

    def cells(self, replay: bool = False) -> list[Cell]:
        """Every cell, row-major."""
        return [
            Cell(
                row=r,
                column=c,
                variant_name=row.variant.name,
                knobs=tuple(row.variant.knobs.items()),
                config=row.config,
                invariant=invariant,
                engine=self.engine,
                bound=self.bound,
                timeout_s=self.timeout_s,
                replay=replay,
            )
            for r, row in enumerate(self.rows)
            for c, invariant in enumerate(self.invariants)
        ]


def vary_values(knob: str, values: Sequence[KnobValue] | None = None) -> tuple[KnobValue, ...]:
    """The values a varied knob takes: all of its values (default first), or ``values`` after
    checking each; raises ValueError."""
    if knob not in KNOBS:
        raise ValueError(f"unknown knob {knob!r} (known: {', '.join(KNOBS)})")
    if values is None:
        return KNOBS[knob]
    if not values:
        raise ValueError(f"knob {knob!r}: no values to vary over")
    for value in values:
        reason = knob_error(knob, value)
        if reason:
            raise ValueError(reason)
    return tuple(dict.fromkeys(values))


def expand_variants(
    bases: Sequence[Variant],
    knobs: Mapping[str, KnobValue] | None = None,
    vary: Sequence[tuple[str, Sequence[KnobValue]]] = (),
) -> list[Variant]:
    """Each base with the fixed ``knobs``, times the cartesian product of the varied knobs'
    values (the first varied knob changes slowest); raises ValueError."""
    knobs = dict(knobs or {})
    names = [knob for knob, _ in vary]
    for knob in names:
        if names.count(knob) > 1:
            raise ValueError(f"knob {knob!r} is varied twice")
        if knob in knobs:
            raise ValueError(f"knob {knob!r} is both fixed and varied")
    out: list[Variant] = []
    for base in bases:
        for combo in itertools.product(*(values for _, values in vary)):
            out.append(override(base, {**knobs, **dict(zip(names, combo, strict=True))}))
    return out


def make_sweep(
    variants: Sequence[Variant],
    configs: Sequence[Config],
    invariants: Sequence[str] = INVARIANTS,
    engine: str = DEFAULT_ENGINE,
    bound: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT,
    description: str = "",
) -> Sweep:
    """The sweep of ``variants`` times ``configs`` (variant-major); raises ValueError."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r} (known: {', '.join(ENGINES)})")
    for name in invariants:
        if name not in INVARIANTS and name not in LIVENESS_PROPERTIES:
            known = ", ".join((*INVARIANTS, *LIVENESS_PROPERTIES))
            raise ValueError(f"unknown invariant or property {name!r} (known: {known})")
    if not variants or not configs or not invariants:
        raise ValueError("nothing to explore: no variant, configuration or invariant")
    bound = DEFAULT_BOUND[engine] if bound is None else bound
    if bound < 1:
        raise ValueError("the bound must be at least 1")
    rows = tuple(Row(v, c) for v in variants for c in configs)
    return Sweep(
        rows, tuple(dict.fromkeys(invariants)), engine, bound, timeout_s, description.strip()
    )


# --- one cell ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One cell as plain, picklable data (a Variant's knob mapping is not picklable): it travels
    to a worker process or a Dask worker. ``replay``: replay a counterexample on the spec for
    its per-step states (for the HTML report)."""

    row: int
    column: int
    variant_name: str
    knobs: tuple[tuple[str, KnobValue], ...]
    config: Config
    invariant: str
    engine: str
    bound: int
    timeout_s: float
    replay: bool = False

    @property
    def variant(self) -> Variant:
        return Variant(MappingProxyType(dict(self.knobs)), self.variant_name)


@dataclass(frozen=True)
class CellResult:
    """A cell's verdict; for a replayed counterexample also the spec's replay and the state
    after each step (``states[0]`` is the initial state)."""

    row: int
    column: int
    verdict: Verdict
    replay: Replay | None = None
    states: tuple[Mapping[str, StateValue], ...] = ()


def run_cell(cell: Cell) -> CellResult:
    """Run one cell (in whatever process): an engine failure is an ``error`` verdict."""
    started = time.perf_counter()
    variant = cell.variant
    try:
        if cell.invariant in LIVENESS_PROPERTIES:
            verdict = _liveness_cell(cell)
        else:
            (verdict,) = check(
                variant, cell.config, (cell.invariant,), cell.engine, cell.bound, cell.timeout_s
            )
    except Exception as err:  # reported in its cell, never a pass
        elapsed = time.perf_counter() - started
        verdict = Verdict(
            cell.invariant, "error", cell.engine, cell.bound, elapsed, reason=f"{err}"
        )
    if not (cell.replay and verdict.verdict == "violated" and verdict.trace):
        return CellResult(cell.row, cell.column, verdict)
    from kvmmu.render import replay_states
    from spec import SpecEngine

    replay, states = replay_states(SpecEngine(), Problem(variant, cell.config), verdict.trace)
    return CellResult(cell.row, cell.column, verdict, replay, tuple(states))


def _liveness_cell(cell: Cell) -> Verdict:
    """A liveness column: k-liveness under weak fairness, else the shortest lasso of at most
    :data:`LASSO_DEPTH` steps (``loop`` its start), as ``kvmmu prove --property``."""
    from spec.liveness import prove_liveness

    r = prove_liveness(
        cell.variant,
        cell.config,
        cell.invariant,
        depth=LASSO_DEPTH,
        cover_depth=LASSO_DEPTH,
        timeout_s=cell.timeout_s,
    )
    return Verdict(
        cell.invariant,
        r.verdict,
        "liveness",
        LASSO_DEPTH,
        r.seconds,
        z3=r.z3_version,
        trace=r.trace,
        k=r.k or None,
        lemmas=r.lemmas,
        reason=r.reason,
        loop=r.loop_start if r.verdict == "violated" else None,
    )


# --- running the sweep ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Exploration:
    """A sweep and its results, ``results[row][column]``; ``seconds`` is the wall time and
    ``workers`` says where the cells ran (``2 jobs``, ``dask tcp://...``)."""

    sweep: Sweep
    results: tuple[tuple[CellResult, ...], ...]
    seconds: float = 0.0
    workers: str = ""

    def cells(self) -> Iterator[tuple[Row, str, CellResult]]:
        for row, results in zip(self.sweep.rows, self.results, strict=True):
            for invariant, result in zip(self.sweep.invariants, results, strict=True):
                yield row, invariant, result

    @property
    def counts(self) -> dict[str, int]:
        found = [result.verdict.verdict for _, _, result in self.cells()]
        return {v: found.count(v) for v in VERDICT_ORDER if v in found}

    @property
    def exit_status(self) -> int:
        """0: every cell answered; 3: some cell is unknown or an error."""
        unanswered = any(EXIT_STATUS[r.verdict.verdict] == EXIT_UNKNOWN for _, _, r in self.cells())
        return EXIT_UNKNOWN if unanswered else EXIT_RAN


Progress = Callable[[int, int], None]


def default_jobs() -> int:
    return os.cpu_count() or 1


def explore(
    sweep: Sweep,
    jobs: int | None = None,
    dask_address: str | None = None,
    replay: bool = False,
    progress: Progress | None = None,
) -> Exploration:
    """Run every cell of ``sweep``: in this process (``jobs`` 1), in a process pool of ``jobs``
    workers (default: every core), or on the Dask cluster at ``dask_address``. ``progress`` is
    called with (done, total) as cells finish."""
    cells = sweep.cells(replay)
    started = time.perf_counter()
    if progress:
        progress(0, len(cells))
    if dask_address is not None:
        done = _run_dask(cells, dask_address, progress)
        workers = f"dask {dask_address}"
    else:
        jobs = default_jobs() if jobs is None else jobs
        if jobs < 1:
            raise ValueError("--jobs must be at least 1")
        jobs = min(jobs, len(cells))
        done = _run_local(cells, jobs, progress)
        workers = f"{jobs} job{'s' if jobs != 1 else ''}"
    by_place = {(r.row, r.column): r for r in done}
    results = tuple(
        tuple(by_place[(r, c)] for c in range(len(sweep.invariants)))
        for r in range(len(sweep.rows))
    )
    return Exploration(sweep, results, time.perf_counter() - started, workers)


def _run_local(cells: Sequence[Cell], jobs: int, progress: Progress | None) -> list[CellResult]:
    done: list[CellResult] = []
    if jobs <= 1:
        for cell in cells:
            done.append(run_cell(cell))
            if progress:
                progress(len(done), len(cells))
        return done
    # forkserver: workers start from a clean server process, not from a copy of this one (which
    # may hold Z3 contexts or threads); each worker then builds its own Z3 contexts
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(run_cell, cell) for cell in cells]
        for future in as_completed(futures):
            done.append(future.result())
            if progress:
                progress(len(done), len(cells))
    return done


DASK_CONNECT_TIMEOUT = "10s"  # distributed's default is 30 s, long for a mistyped address


def _run_dask(cells: Sequence[Cell], address: str, progress: Progress | None) -> list[CellResult]:
    try:
        import distributed
    except ImportError:
        raise ValueError(
            "--dask needs the optional dependency: pip install 'kvmmu[dask]'"
        ) from None
    dist: Any = distributed  # typed loosely: the package is optional
    done: list[CellResult] = []
    try:
        client = dist.Client(address, timeout=DASK_CONNECT_TIMEOUT)
    except (OSError, ValueError, TypeError) as err:
        # the user typed the address: name it (distributed's own message may not)
        raise ValueError(
            f"--dask {address}: cannot connect to a Dask scheduler there "
            f"({type(err).__name__}: {err})"
        ) from None
    try:
        keys = [f"kvmmu-cell-{cell.row}-{cell.column}-{time.time_ns()}" for cell in cells]
        futures = [
            client.submit(run_cell, cell, key=key, pure=False)
            for cell, key in zip(cells, keys, strict=True)
        ]
        for future in dist.as_completed(futures):
            done.append(future.result())
            if progress:
                progress(len(done), len(cells))
    finally:
        client.close()
    return done


class ProgressBar:
    """A one-line progress bar with a time estimate, redrawn in place on ``stream``."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.started = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.started
        filled = self.width * done // total if total else self.width
        bar = "#" * filled + "." * (self.width - filled)
        left = f"~{_clock(elapsed / done * (total - done))} left" if 0 < done < total else ""
        text = f"\r[{bar}] {done}/{total} cells  {_clock(elapsed)} elapsed  {left}"
        self.stream.write(text.ljust(self.width + 48))
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60:02d}:{whole % 60:02d}"


# --- loading a sweep file ------------------------------------------------------------------------

SWEEP_REQUIRED = ("format",)
SWEEP_OPTIONAL = (
    "description",
    "presets",
    "variants",
    "knobs",
    "vary",
    "configs",
    "invariants",
    "engine",
    "bound",
    "timeout",
)


def load_sweep(path: Path | str) -> Sweep:
    """A sweep file (format ``kvmmu-sweep/1``); raises :class:`kvmmu.yamlio.InputError` with the
    file, the line and the field of the first problem."""
    from kvmmu.yamlio import (
        as_bound,
        as_list,
        as_mapping,
        as_seconds,
        as_str,
        child_path,
        item_path,
        load_yaml,
        parse_config,
        parse_variant,
        type_name,
    )

    doc = load_yaml(path)
    top = as_mapping(doc, "", doc.data, SWEEP_REQUIRED, SWEEP_OPTIONAL)
    fmt = as_str(doc, "format", top["format"])
    if fmt != FORMAT:
        raise doc.error("format", f"unsupported format {fmt!r} (this loader reads {FORMAT})")
    description = as_str(doc, "description", top.get("description", ""))

    bases: list[Variant] = []
    if "presets" in top:
        raw = top["presets"]
        if raw == "all":
            bases += [make_variant(p) for p in PRESETS]
        else:
            items = as_list(doc, "presets", raw)
            for i, item in enumerate(items):
                sub = item_path("presets", i)
                name = as_str(doc, sub, item)
                bases.append(parse_variant(doc, sub, name))
    for i, item in enumerate(as_list(doc, "variants", top.get("variants", []))):
        bases.append(parse_variant(doc, item_path("variants", i), item))
    if not bases:
        raise doc.error("", "no variants: give presets (a list, or all) or variants")

    knobs: dict[str, KnobValue] = {}
    raw_knobs = top.get("knobs", {})
    if not isinstance(raw_knobs, dict):
        raise doc.error("knobs", f"expected a mapping of knob: value, got {type_name(raw_knobs)}")
    for knob, value in raw_knobs.items():
        reason = knob_error(knob, value)
        if reason:
            raise doc.error(child_path("knobs", knob), reason)
        assert isinstance(value, str | bool)
        knobs[knob] = value

    vary: list[tuple[str, tuple[KnobValue, ...]]] = []
    raw_vary = top.get("vary", [])
    if isinstance(raw_vary, list):
        for i, item in enumerate(raw_vary):
            sub = item_path("vary", i)
            knob = as_str(doc, sub, item)
            try:
                vary.append((knob, vary_values(knob)))
            except ValueError as err:
                raise doc.error(sub, str(err)) from None
    elif isinstance(raw_vary, dict):
        for knob, values in raw_vary.items():
            sub = child_path("vary", knob)
            chosen: list[KnobValue] | None = None
            if values is not None:
                chosen = []
                for j, value in enumerate(as_list(doc, sub, values)):
                    reason = knob_error(knob, value)
                    if reason:
                        raise doc.error(item_path(sub, j), reason)
                    assert isinstance(value, str | bool)
                    chosen.append(value)
            try:
                vary.append((knob, vary_values(knob, chosen)))
            except ValueError as err:
                raise doc.error(sub, str(err)) from None
    else:
        raise doc.error(
            "vary",
            f"expected a list of knobs or a mapping knob: [values], got {type_name(raw_vary)}",
        )
    for knob, _ in vary:
        if knob in knobs:
            raise doc.error(child_path("knobs", knob), f"knob {knob!r} is both fixed and varied")

    configs = [Config()]
    if "configs" in top:
        items = as_list(doc, "configs", top["configs"])
        if not items:
            raise doc.error("configs", "no configurations")
        configs = [parse_config(doc, item_path("configs", i), c) for i, c in enumerate(items)]

    invariants: list[str] = list(INVARIANTS)
    if "invariants" in top:
        items = as_list(doc, "invariants", top["invariants"])
        if not items:
            raise doc.error("invariants", "no invariants")
        invariants = []
        for i, item in enumerate(items):
            sub = item_path("invariants", i)
            name = as_str(doc, sub, item)
            if name not in INVARIANTS:
                raise doc.error(sub, f"unknown invariant {name!r} (known: {', '.join(INVARIANTS)})")
            invariants.append(name)

    engine = DEFAULT_ENGINE
    if "engine" in top:
        engine = as_str(doc, "engine", top["engine"])
        if engine not in ENGINES:
            raise doc.error("engine", f"expected one of {', '.join(ENGINES)}, got {engine!r}")
    bound = None
    if "bound" in top:
        bound = as_bound(doc, "bound", top["bound"])
    timeout = DEFAULT_TIMEOUT
    if "timeout" in top:
        timeout = as_seconds(doc, "timeout", top["timeout"])

    try:
        variants = expand_variants(bases, knobs, vary)
        return make_sweep(variants, configs, invariants, engine, bound, timeout, description)
    except ValueError as err:  # pragma: no cover - every rule above is checked with its line
        raise doc.error("", str(err)) from None


# --- reports: terminal matrix, Markdown, JSON ----------------------------------------------------


def cell_text(verdict: Verdict) -> str:
    """``proved``, ``violated in 13``, ``holds to 20``, ``not inductive``, ``vacuous: no
    retry.obsolete``, ``unknown``, ``error``; a required cover target not reached within the
    bound is named (``covers: no ...``)."""
    v = verdict.verdict
    loop = "" if verdict.loop is None else f" (loop at {verdict.loop})"
    text = {
        "violated": f"violated in {len(verdict.trace)}{loop}",
        "not_proved": "not proved",
        "holds": f"holds to {verdict.bound}",
        "not_inductive": "not inductive",
    }.get(v, v)
    unreached = unreached_covers(verdict)
    if v == "vacuous":
        return f"vacuous: no {', '.join(unreached)}" if unreached else text
    if unreached and v != "violated":
        return f"{text} (covers: no {', '.join(unreached)})"
    return text


def unreached_covers(verdict: Verdict) -> list[str]:
    """The required cover targets not shown reachable within the bound (none for a verdict that
    computed no covers)."""
    if not verdict.cover:
        return []
    return [t for t in sorted(verdict.required) if verdict.cover.get(t) is not True]


def row_label(exploration: Exploration, row: Row) -> str:
    """The variant's name, and the configuration when the sweep has several."""
    if len(exploration.sweep.configs) <= 1:
        return row.variant.name
    return f"{row.variant.name} [{config_text(row.config)}]"


def config_text(config: Config) -> str:
    """``vcpus special,sp; zappers 1; notifier; max_zaps 2; max_invalidations 1``."""
    parts = [f"vcpus {','.join(config.vcpus)}", f"zappers {config.zappers}"]
    if config.notifier:
        parts.append("notifier")
    parts.append(f"max_zaps {_bound(config.max_zaps)}")
    if config.notifier:
        parts.append(f"max_invalidations {_bound(config.max_invalidations)}")
    return "; ".join(parts)


def _bound(value: int | None) -> str:
    return "unbounded" if value is None else str(value)


def how_text(sweep: Sweep) -> str:
    if sweep.engine == "kind":
        return f"k-induction up to k = {sweep.bound}"
    return f"BMC to depth {sweep.bound}"


def summary_text(exploration: Exploration) -> str:
    """``30 cells (6 rows x 5 invariants): 26 proved, 4 violated; 9.8 s on 2 jobs``."""
    sweep = exploration.sweep
    counts = ", ".join(f"{n} {v.replace('_', ' ')}" for v, n in exploration.counts.items())
    total = len(sweep.rows) * len(sweep.invariants)
    return (
        f"{total} cells ({len(sweep.rows)} rows x {len(sweep.invariants)} invariants): {counts}; "
        f"{exploration.seconds:.1f} s on {exploration.workers}"
    )


def _notes(exploration: Exploration) -> list[str]:
    """Why cells are unknown or errors."""
    return [
        f"{row_label(exploration, row)} / {invariant}: {r.verdict.verdict}: {r.verdict.reason}"
        for row, invariant, r in exploration.cells()
        if r.verdict.verdict in ("unknown", "error") and r.verdict.reason
    ]


def matrix_text(exploration: Exploration) -> str:
    """The verdict matrix as a plain-text table, with a header and a summary line."""
    from kvmmu.render import table

    sweep = exploration.sweep
    header = ["variant", *sweep.invariants]
    rows = [
        [row_label(exploration, row), *(cell_text(r.verdict) for r in results)]
        for row, results in zip(sweep.rows, exploration.results, strict=True)
    ]
    lines = [f"kvmmu explore: {how_text(sweep)}"]
    if len(sweep.configs) == 1:
        lines.append(f"configuration: {config_text(sweep.configs[0])}")
    lines += ["", table(header, rows), "", summary_text(exploration)]
    notes = _notes(exploration)
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def matrix_markdown(exploration: Exploration) -> str:
    """The verdict matrix as a Markdown document: the table, then each counterexample."""
    sweep = exploration.sweep
    lines = ["# kvmmu explore", ""]
    if sweep.description:
        lines += [sweep.description, ""]
    lines.append(f"Engine: {how_text(sweep)}.")
    if len(sweep.configs) == 1:
        lines.append(f"Configuration: {config_text(sweep.configs[0])}.")
    lines += ["", "| variant | " + " | ".join(f"`{i}`" for i in sweep.invariants) + " |"]
    lines.append("|---" * (len(sweep.invariants) + 1) + "|")
    for row, results in zip(sweep.rows, exploration.results, strict=True):
        cells = []
        for r in results:
            text = cell_text(r.verdict)
            cells.append(f"**{text}**" if r.verdict.verdict == "violated" else text)
        lines.append(f"| `{row_label(exploration, row)}` | " + " | ".join(cells) + " |")
    lines += ["", summary_text(exploration) + "."]
    notes = _notes(exploration)
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    violated = [
        (row, inv, r) for row, inv, r in exploration.cells() if r.verdict.verdict == "violated"
    ]
    if violated:
        lines += ["", "## Counterexamples"]
    for row, invariant, r in violated:
        v = r.verdict
        lines += ["", f"### `{row_label(exploration, row)}`: `{invariant}` in {len(v.trace)} steps"]
        lines += ["", f"`{_command(row, v)}`", ""]
        lines += [f"{i}. `{step}`" for i, step in enumerate(v.trace, start=1)]
    return "\n".join(lines) + "\n"


def _command(row: Row, verdict: Verdict) -> str:
    from kvmmu.obligations import command_line

    return command_line(row.variant, row.config, verdict.invariant, verdict.engine, verdict.bound)


def exploration_json(exploration: Exploration) -> dict[str, object]:
    """The stable JSON report (format ``kvmmu-explore/1``, see docs/formats/)."""
    from kvmmu.obligations import verdict_json

    sweep = exploration.sweep
    return {
        "format": JSON_FORMAT,
        "description": sweep.description,
        "engine": sweep.engine,
        "bound": sweep.bound,
        "timeout": sweep.timeout_s,
        "invariants": list(sweep.invariants),
        "configs": [c.as_dict() for c in sweep.configs],
        "rows": [
            {
                "label": row_label(exploration, row),
                "variant": {
                    "name": row.variant.name,
                    "spec": variant_spec(row.variant),
                    "knobs": row.variant.as_dict(),
                },
                "config": row.config.as_dict(),
                "cells": [
                    {
                        "text": cell_text(r.verdict),
                        "unreached": unreached_covers(r.verdict),
                        **verdict_json(r.verdict, row.variant, row.config, sweep.timeout_s),
                    }
                    for r in results
                ],
            }
            for row, results in zip(sweep.rows, exploration.results, strict=True)
        ],
        "counts": exploration.counts,
        "seconds": round(exploration.seconds, 3),
        "workers": exploration.workers,
        "exit": exploration.exit_status,
    }


def dumps_json(exploration: Exploration) -> str:
    return json.dumps(exploration_json(exploration), indent=2)
