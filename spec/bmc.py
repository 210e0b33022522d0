"""Bounded model checking, incremental over the depth.

One solver holds the unrolling ``I(s_0) & T(s_0, c_0, s_1) & ... & T(s_{k-1}, c_{k-1}, s_k)``;
it is extended one step at a time, and at each depth ``i`` the solver is asked whether some
not-yet-violated invariant is violated *by step i* (under an assumption literal). As every
shallower depth was answered unsat, the first counterexample found for an invariant is a
shortest one. After an unsat answer the negation is asserted (it is implied, and helps later
depths). Cover targets are checked the same way in the same loop: a target is reached within the
bound when some step ``i <= k`` hits it.

A verdict ``holds`` means Z3 answered unsat at every depth ``1..k``; an ``unknown`` answer or a
timeout gives ``unknown``, never ``holds``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import z3

from kvmmu.engine import Progress, StateValue
from kvmmu.vocab import COVER_TARGETS, INVARIANTS, Config, Step, Variant
from spec.decode import decode_state, decode_step, describe_changes
from spec.invariants import BAD, COVER, required_covers
from spec.state import Expr
from spec.unroll import Unrolling
from spec.variants import Layout, make_layout

Verdict = Literal["violated", "holds", "unknown", "error"]


@dataclass(frozen=True)
class BmcResult:
    """The answer for one invariant.

    ``depth``: the bound checked (``holds``), the counterexample length (``violated``), or the
    depth at which the solver gave up (``unknown``). ``trace``/``states``: the counterexample
    and its ``len(trace) + 1`` states (section 6.7 paths). ``cover``: per cover target, True if
    reached within the bound, False if unreachable within it, None if not determined.
    ``required_covers``: the targets a non-vacuous proof must reach (see :func:`vacuous`).
    """

    invariant: str
    verdict: Verdict
    depth: int
    trace: tuple[Step, ...] = ()
    cover: Mapping[str, bool | None] = field(default_factory=dict)
    seconds: float = 0.0
    z3_version: str = field(default_factory=z3.get_version_string)
    reason: str = ""
    states: tuple[Mapping[str, StateValue], ...] = ()
    required_covers: frozenset[str] = frozenset()
    variant: str = ""


def vacuous(result: BmcResult) -> bool:
    """Whether a ``holds`` is possibly vacuous: some required cover target was not shown
    reachable within the bound (unreachable, or undetermined)."""
    return result.verdict == "holds" and any(
        result.cover.get(target) is not True for target in result.required_covers
    )


def unreached(result: BmcResult) -> tuple[str, ...]:
    """The required cover targets not shown reachable."""
    return tuple(t for t in sorted(result.required_covers) if result.cover.get(t) is not True)


def bmc(
    variant: Variant,
    config: Config,
    invariants: Sequence[str] = INVARIANTS,
    depth: int = 20,
    timeout_s: float | None = 120.0,
    progress: Progress | None = None,
) -> list[BmcResult]:
    """Check ``invariants`` on every path of at most ``depth`` steps; one result per invariant,
    in the order given. ``timeout_s`` bounds the whole run (None: no limit). ``progress``, when
    given, hears ``("depth", i)`` once depth ``i`` is done."""
    start = time.monotonic()
    version = z3.get_version_string()

    def error(name: str, reason: str) -> BmcResult:
        return BmcResult(
            name,
            "error",
            0,
            seconds=time.monotonic() - start,
            z3_version=version,
            reason=reason,
            variant=variant.name,
        )

    if depth < 0:
        return [error(name, "depth must be >= 0") for name in invariants]
    try:
        layout = make_layout(variant, config, horizon=depth)
    except ValueError as exc:
        return [error(name, str(exc)) for name in invariants]
    unknown_names = [name for name in invariants if name not in BAD]
    wanted = [name for name in dict.fromkeys(invariants) if name in BAD]
    try:
        found = _run(layout, wanted, depth, timeout_s, start, progress)
    except z3.Z3Exception as exc:  # pragma: no cover - a solver failure
        return [error(name, f"z3: {str(exc)[:200]}") for name in invariants]
    results = []
    for name in invariants:
        if name in unknown_names:
            results.append(error(name, f"unknown invariant {name!r}"))
        else:
            results.append(found[name])
    return results


@dataclass
class _Search:
    layout: Layout
    unrolling: Unrolling
    start: float
    timeout_s: float | None

    def remaining(self) -> float | None:
        if self.timeout_s is None:
            return None
        return self.timeout_s - (time.monotonic() - self.start)

    def check(self, formula: Expr) -> tuple[z3.CheckSatResult, str]:
        left = self.remaining()
        if left is not None and left <= 0:
            return z3.unknown, "timeout"
        lit = self.unrolling.literal(formula)
        answer = self.unrolling.check(lit, timeout_s=left)
        reason = ""
        if answer == z3.unknown:
            reason = str(self.unrolling.solver.reason_unknown())
            if reason in ("canceled", "timeout"):
                reason = f"timeout after {time.monotonic() - self.start:.1f}s"
        return answer, reason

    def counterexample(
        self, length: int
    ) -> tuple[tuple[Step, ...], tuple[dict[str, StateValue], ...]]:
        model = self.unrolling.solver.model()
        u = self.unrolling
        trace = tuple(decode_step(self.layout, model, u.choices[i]) for i in range(length))
        states = tuple(decode_state(model, u.states[i]) for i in range(length + 1))
        return trace, states


def _run(
    layout: Layout,
    wanted: list[str],
    depth: int,
    timeout_s: float | None,
    start: float,
    progress: Progress | None = None,
) -> dict[str, BmcResult]:
    u = Unrolling(layout)
    search = _Search(layout, u, start, timeout_s)
    version = z3.get_version_string()
    required = required_covers(layout)
    open_invariants = list(wanted)
    done: dict[str, BmcResult] = {}
    cover: dict[str, bool | None] = {t: None for t in COVER_TARGETS}
    open_covers = list(COVER_TARGETS)
    covers_gave_up = False

    def finish(name: str, verdict: Verdict, at: int, **extra: object) -> BmcResult:
        return BmcResult(
            name,
            verdict,
            at,
            seconds=time.monotonic() - start,
            z3_version=version,
            required_covers=required,
            variant=layout.variant.name,
            **extra,  # type: ignore[arg-type]
        )

    for i in range(1, depth + 1):
        if not open_invariants:
            break
        u.extend()
        s, c, t = u.states[i - 1], u.choices[i - 1], u.states[i]
        # invariants: is one of the open ones violated by step i?
        while open_invariants:
            bad = {name: BAD[name](s, c, t) for name in open_invariants}
            answer, reason = search.check(z3.Or(list(bad.values())))
            if answer == z3.sat:
                model = u.solver.model()
                hit = [n for n in open_invariants if z3.is_true(model.eval(bad[n], True))]
                trace, states = search.counterexample(i)
                for name in hit:
                    done[name] = finish(name, "violated", i, trace=trace, states=states)
                    open_invariants.remove(name)
                continue
            if answer == z3.unsat:
                u.solver.add(z3.Not(z3.Or(list(bad.values()))))
            else:
                for name in open_invariants:
                    done[name] = finish(name, "unknown", i, reason=reason or "unknown")
                open_invariants = []
            break
        # cover targets: is one of the unreached ones hit by step i?
        while open_covers and not covers_gave_up:
            hits = {name: COVER[name](s, c, t) for name in open_covers}
            answer, _ = search.check(z3.Or(list(hits.values())))
            if answer == z3.sat:
                model = u.solver.model()
                for name in list(open_covers):
                    if z3.is_true(model.eval(hits[name], True)):
                        cover[name] = True
                        open_covers.remove(name)
                continue
            if answer != z3.unsat:
                covers_gave_up = True
            break
        if progress is not None:
            progress("depth", i)
    if not covers_gave_up and u.depth == depth:
        # unsat at every depth up to the bound (if the loop stopped early, they stay None)
        for name in open_covers:
            cover[name] = False
    for name in open_invariants:
        done[name] = finish(name, "holds", depth)
    final = dict(cover)
    return {
        name: BmcResult(
            r.invariant,
            r.verdict,
            r.depth,
            r.trace,
            final,
            r.seconds if r.verdict != "holds" else time.monotonic() - start,
            r.z3_version,
            r.reason,
            r.states,
            r.required_covers,
            r.variant,
        )
        for name, r in done.items()
    }


def render(result: BmcResult) -> str:
    """A human-readable report of one result; a counterexample shows each step and what it
    changed (the section 6.7 state paths)."""
    head = f"{result.invariant}: {result.verdict} (depth {result.depth}, {result.seconds:.2f}s)"
    lines = [head]
    if result.reason:
        lines.append(f"  reason: {result.reason}")
    for i, step in enumerate(result.trace):
        changes = ""
        if len(result.states) > i + 1:
            changes = describe_changes(dict(result.states[i]), dict(result.states[i + 1]))
        lines.append(f"  {i + 1:3d}. {step}" + (f"    [{changes}]" if changes else ""))
    if result.verdict == "holds":
        reached = ", ".join(t for t, ok in result.cover.items() if ok) or "none"
        lines.append(f"  covers reached: {reached}")
        if vacuous(result):
            lines.append(f"  VACUOUS? required covers not reached: {', '.join(unreached(result))}")
    return "\n".join(lines)
