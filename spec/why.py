"""Necessity analysis (``kvmmu why``): which named facts a proof of an invariant depends on.

For a variant, a configuration, an invariant and a bound ``K``, with the facts of
:mod:`spec.facts` that the problem offers:

1. The invariant must hold in the unmodified model: plain BMC to ``K``, with the cover targets
   (:func:`spec.bmc.bmc`). A violation, ``unknown`` or a vacuous ``holds`` ends the analysis
   (necessity means nothing for an invariant that does not hold).
2. One incremental unrolling of the *relaxed* encoding (one assumption literal per fact,
   :mod:`spec.facts`), asked about depth ``i`` while ``i`` is its deepest step. At each
   depth Z3 is asked for a bad step ``i`` with the facts of a running *sufficient set* held and
   the others free (each may be held or dropped, for the whole path); if that is sat, it is
   asked again with every fact held, which must be unsat (the relaxed encoding with every fact
   true is the plain model, where the invariant holds). The unsat core, restricted to the fact
   literals, names the facts this depth needs.
   For each fact ``f`` of that core not yet shown needed, Z3 is asked again with every fact
   but ``f``: the first depth at which that is sat gives the *shortest* counterexample of the
   model without ``f`` (all shallower depths were unsat). A fact outside a depth's core cannot
   give a violation at that depth (the facts kept include the core), so no query is needed
   there. Where the sufficient set no longer excludes a bad step, it grows by the facts needed
   alone and then by as few facts of the core as that depth needs. Every unsat answer is
   learned as "these literals exclude a bad step at this depth".
3. The sufficient set is minimized by dropping one fact at a time: a fact stays when the others
   of the set alone (every fact outside it free, i.e. possibly dropped too) admit a bad step at
   some depth ``<= K``. These queries run on a second unrolling whose steps are each asserted
   under a literal, so that a path of ``i < K`` steps need not extend to ``K``. A fact needed
   alone is in every sufficient set and is not tried. The result is a minimal set of facts that
   keeps the invariant to depth ``K`` (minimal, not minimum: another choice may exist).

Everything is BMC to the bound ``K``: the core says what a proof *to depth K* needs, and a fact
whose drop gives no violation within ``K`` is reported as holding to ``K`` only.

A fact in the core whose drop alone still holds is *replaceable*: another fact (kept) does its
job. A fact outside the core whose drop alone is violated would show that the core is not
unique; by construction (the kept facts include the core) that cannot happen, and the report
would say so.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import z3

from kvmmu.engine import StateValue
from kvmmu.vocab import Config, Knobs, Step, Variant, config_error
from spec.bmc import BmcResult, bmc, vacuous
from spec.decode import decode_state, decode_step
from spec.facts import FACTS, Fact, offered
from spec.invariants import BAD
from spec.state import Expr, State, initial, make_state
from spec.steps import encode, make_choice
from spec.unroll import make_solver
from spec.variants import Layout, make_layout

DropVerdict = Literal["violated", "holds", "unknown"]
WhyVerdict = Literal["holds", "violated", "vacuous", "unknown", "error"]


@dataclass(frozen=True)
class Dropped:
    """The model without one fact: ``violated`` with a shortest counterexample (``trace`` of
    ``depth`` steps, ``states`` decoded from the BMC model, ``exploits``: the 1-based steps that
    are not steps of the model *with* the fact, i.e. where the counterexample uses its absence),
    ``holds`` to ``depth`` (the bound), or ``unknown``."""

    verdict: DropVerdict
    depth: int
    trace: tuple[Step, ...] = ()
    states: tuple[Mapping[str, StateValue], ...] = ()
    exploits: tuple[int, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class FactReport:
    """One fact: in the minimized core or not, and the verdict with the fact dropped alone."""

    fact: Fact
    in_core: bool
    dropped: Dropped

    @property
    def necessary(self) -> bool:
        """Dropping it alone breaks the invariant within the bound."""
        return self.dropped.verdict == "violated"

    @property
    def replaceable(self) -> bool:
        """In the core, yet the invariant holds without it (another fact does its job)."""
        return self.in_core and self.dropped.verdict == "holds"


@dataclass(frozen=True)
class WhyResult:
    """The analysis of one invariant. ``base``: the plain BMC result (the invariant must hold
    there). ``core``: the minimized unsat core over the fact literals (BMC to ``bound``)."""

    invariant: str
    variant: Variant
    config: Config
    bound: int
    verdict: WhyVerdict
    base: BmcResult | None = None
    facts: tuple[FactReport, ...] = ()
    core: tuple[str, ...] = ()
    seconds: float = 0.0
    z3_version: str = field(default_factory=z3.get_version_string)
    reason: str = ""


def offered_facts(variant: Variant, config: Config) -> tuple[str, ...]:
    """The facts ``why`` examines for this problem (:func:`spec.facts.offered`)."""
    return offered(Knobs.of(variant), config)


def analyse(
    variant: Variant,
    config: Config,
    invariant: str,
    depth: int = 20,
    timeout_s: float = 300.0,
) -> WhyResult:
    """The necessity analysis of ``invariant`` to ``depth`` steps (see the module docstring)."""
    start = time.monotonic()
    deadline = start + timeout_s

    def result(verdict: WhyVerdict, **extra: object) -> WhyResult:
        return WhyResult(
            invariant,
            variant,
            config,
            depth,
            verdict,
            seconds=time.monotonic() - start,
            **extra,  # type: ignore[arg-type]
        )

    if invariant not in BAD:
        return result("error", reason=f"unknown invariant {invariant!r}")
    if depth < 1:
        return result("error", reason="depth must be >= 1")
    reason = config_error(config)
    if reason:
        return result("error", reason=reason)
    try:
        names = offered_facts(variant, config)
    except ValueError as exc:
        return result("error", reason=str(exc))
    (base,) = bmc(variant, config, [invariant], depth, timeout_s)
    if base.verdict != "holds":
        return result(base.verdict, base=base, reason=base.reason)
    if vacuous(base):
        return result("vacuous", base=base, reason="a required cover target is not reached")
    layout = make_layout(variant, config, horizon=depth, relax=names)
    try:
        run = _Analysis(layout, invariant, names, deadline)
        run.unroll(depth)
        core = run.minimize(depth) if not run.gave_up else ()
    except z3.Z3Exception as exc:  # pragma: no cover - a solver failure
        return result("error", base=base, reason=f"z3: {str(exc)[:200]}")
    if run.gave_up:
        return result("unknown", base=base, reason=run.gave_up)
    in_core = set(core)
    reports = tuple(
        FactReport(
            FACTS[name],
            name in in_core,
            run.dropped.get(name, Dropped("holds", depth)),
        )
        for name in names
    )
    ordered = tuple(name for name in names if name in in_core)
    return result("holds", base=base, facts=reports, core=ordered)


def check_dropped(
    variant: Variant,
    config: Config,
    invariant: str,
    depth: int,
    dropped: Sequence[str] = (),
    timeout_s: float = 300.0,
) -> Dropped:
    """BMC of ``invariant`` to ``depth`` in the model with the facts ``dropped`` dropped
    together and every other offered fact held: ``violated`` with a shortest counterexample,
    ``holds`` or ``unknown``. With nothing dropped this is the plain model, through the relaxed
    encoding (the tests compare the two). Raises ValueError for a fact the problem lacks."""
    names = offered_facts(variant, config)
    for name in dropped:
        if name not in names:
            raise ValueError(f"fact {name!r} is not offered here (offered: {', '.join(names)})")
    layout = make_layout(variant, config, horizon=depth, relax=names)
    run = _Analysis(layout, invariant, names, time.monotonic() + timeout_s)
    held = [n for n in names if n not in dropped]
    for d in range(1, depth + 1):
        run.u.extend()
        answer, _ = run.u.check(d, held, dropped)
        if answer == z3.sat:
            return run._counterexample(tuple(dropped), d)
        if answer != z3.unsat:
            return Dropped("unknown", d, reason=run.u.gave_up)
    return Dropped("holds", depth)


class _Unrolling:
    """An incremental unrolling of the relaxed encoding with the bad step of each depth under a
    query literal. ``guarded``: each step's relation under its own literal, so that a query
    about depth ``i`` can be asked after deeper steps were added (paths of exactly ``i`` steps,
    even where a path cannot be extended); else the relation is asserted outright, and a depth is
    asked about only while it is the deepest."""

    def __init__(self, layout: Layout, invariant: str, deadline: float, guarded: bool) -> None:
        self.layout = layout
        self.invariant = invariant
        self.deadline = deadline
        self.guarded = guarded
        self.lits: Mapping[str, Expr] = layout.relaxed
        self.by_name = {str(lit): name for name, lit in self.lits.items()}
        self.solver = make_solver(layout.ctx)
        self.states: list[State] = [make_state(layout, "0")]
        self.choices: list[Expr] = []
        self.relations: list[Expr] = []
        self.step_lits: list[Expr] = []
        self.queries: list[Expr] = []
        self.bad: list[Expr] = []
        self.solver.add(initial(self.states[0]))
        self.gave_up = ""

    def extend(self) -> None:
        k = len(self.choices)
        s, t = self.states[k], make_state(self.layout, str(k + 1))
        c = make_choice(self.layout, str(k))
        relation = encode(s, c, t)
        if self.guarded:
            step = z3.Bool(f"step!{k}", self.layout.ctx)
            self.solver.add(z3.Implies(step, relation))
            self.step_lits.append(step)
        else:
            self.solver.add(relation)
        bad = BAD[self.invariant](s, c, t)
        query = z3.Bool(f"bad!{k + 1}", self.layout.ctx)
        self.solver.add(z3.Implies(query, bad))
        self.states.append(t)
        self.choices.append(c)
        self.relations.append(relation)
        self.queries.append(query)
        self.bad.append(bad)

    def check(
        self, depth: int, facts: Sequence[str], dropped: Sequence[str] = ()
    ) -> tuple[z3.CheckSatResult, list[str]]:
        """Is there a path of ``depth`` steps whose last step is bad, with ``facts`` held,
        ``dropped`` dropped and the others free (held or dropped, for the whole path)? For
        unsat: the facts of the unsat core, which is also learned."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.gave_up = "timeout"
            return z3.unknown, []
        self.solver.set("timeout", max(1, int(left * 1000)))
        query = self.queries[depth - 1]
        assumptions = [query, *self.step_lits[:depth], *(self.lits[n] for n in facts)]
        assumptions += [z3.Not(self.lits[n]) for n in dropped]
        answer = self.solver.check(*assumptions)
        if answer != z3.unsat:
            if answer == z3.unknown:
                why = str(self.solver.reason_unknown())
                self.gave_up = "timeout" if why in ("canceled", "timeout") else why
            return answer, []
        core = list(self.solver.unsat_core())
        used = [self.by_name[str(e)] for e in core if str(e) in self.by_name]
        # learned: these literals exclude a bad step at this depth (sound for every later query)
        premises = [e for e in core if not e.eq(query)]
        known = z3.And(premises) if premises else z3.BoolVal(True, self.layout.ctx)
        self.solver.add(z3.Implies(known, z3.Not(self.bad[depth - 1])))
        return answer, used


class _Analysis:
    """Steps 2 and 3 of the module docstring."""

    def __init__(self, layout: Layout, invariant: str, names: Sequence[str], deadline: float):
        self.layout = layout
        self.invariant = invariant
        self.names = tuple(names)
        self.deadline = deadline
        self.u = _Unrolling(layout, invariant, deadline, guarded=False)
        self.sufficient: list[str] = []
        self.dropped: dict[str, Dropped] = {}
        self.gave_up = ""

    def _ordered(self, names: set[str] | list[str]) -> list[str]:
        return [n for n in self.names if n in names]

    def unroll(self, bound: int) -> None:
        """Per depth: the drop-one-fact queries for the facts of that depth's unsat core, and a
        set of facts that excludes a bad step at every depth so far (``sufficient``: grown only
        where it no longer does, by the facts found needed alone and then by as few of the
        core's other facts as it takes, so that it stays close to minimal)."""
        u = self.u
        for depth in range(1, bound + 1):
            u.extend()
            answer, core = u.check(depth, self.sufficient)
            enough = answer == z3.unsat
            if answer == z3.sat:
                answer, core = u.check(depth, self.names)
                if answer == z3.sat:
                    # the relaxed encoding with every fact true must be the plain model
                    u.gave_up = (
                        f"internal: the encoding with every fact held is violated at depth "
                        f"{depth}, the plain one is not"
                    )
            if not u.gave_up:
                self._drop_each(depth, core)
            if not u.gave_up and not enough:
                self._grow(depth, core)
            if u.gave_up:
                self.gave_up = u.gave_up
                return

    def _drop_each(self, depth: int, core: Sequence[str]) -> None:
        """For each fact of ``core`` not yet shown needed: all facts but it, at ``depth``."""
        u = self.u
        for name in core:
            if name in self.dropped:
                continue
            answer, _ = u.check(depth, [n for n in self.names if n != name])
            if answer == z3.sat:
                self.dropped[name] = self._counterexample(name, depth)
            elif answer != z3.unsat:
                self.dropped[name] = Dropped("unknown", depth, reason=u.gave_up)
                return

    def _grow(self, depth: int, core: Sequence[str]) -> None:
        """Extend ``sufficient`` so that it excludes a bad step at ``depth`` too: first by the
        facts needed alone, then by the facts of ``core`` that this depth cannot spare."""
        needed = [n for n, d in self.dropped.items() if d.verdict == "violated"]
        grown = self._ordered({*self.sufficient, *needed})
        if self.u.check(depth, grown)[0] == z3.unsat:
            self.sufficient = grown
            return
        extra = [n for n in core if n not in grown]
        for name in list(extra):
            trial = [n for n in extra if n != name]
            answer, _ = self.u.check(depth, [*grown, *trial])
            if answer == z3.unsat:
                extra = trial
            elif self.u.gave_up:
                return
        self.sufficient = self._ordered({*grown, *extra})

    def minimize(self, bound: int) -> tuple[str, ...]:
        """Drop-one minimization of the sufficient set, on a guarded unrolling (a candidate
        must exclude a bad step at every depth ``<= bound``). A fact whose drop alone is
        violated is in every sufficient set: only the others are tried."""
        core = list(self.sufficient)
        todo = [
            n for n in core if not (n in self.dropped and self.dropped[n].verdict == "violated")
        ]
        if not todo:
            return tuple(core)
        g = _Unrolling(self.layout, self.invariant, self.deadline, guarded=True)
        for _ in range(bound):
            g.extend()
        for name in todo:
            candidate = [n for n in core if n != name]
            if all(g.check(d, candidate)[0] == z3.unsat for d in range(1, bound + 1)):
                core = candidate
            if g.gave_up:
                self.gave_up = g.gave_up
                break
        return tuple(core)

    def _counterexample(self, name: str | tuple[str, ...], depth: int) -> Dropped:
        u = self.u
        model = u.solver.model()
        trace = tuple(decode_step(self.layout, model, c) for c in u.choices[:depth])
        states = tuple(decode_state(model, s) for s in u.states[: depth + 1])
        # the steps that the model with the fact does not have: the fact's absence at work
        names = (name,) if isinstance(name, str) else name
        held = [(u.lits[n], z3.BoolVal(True, self.layout.ctx)) for n in names]
        exploits = tuple(
            j + 1
            for j in range(depth)
            if not z3.is_true(model.eval(z3.substitute(u.relations[j], *held), True))
        )
        return Dropped("violated", depth, trace, states, exploits)


# --- text ---------------------------------------------------------------------------------------


def marks(report: FactReport, invariant: str) -> dict[int, str]:
    """Notes for the lanes of a counterexample: where it needs the fact dropped, and the
    violating step."""
    notes: dict[int, list[str]] = {}
    for j in report.dropped.exploits:
        notes.setdefault(j, []).append(f"without {report.fact.name}")
    if report.dropped.verdict == "violated":
        notes.setdefault(report.dropped.depth, []).append(f"VIOLATES {invariant}")
    return {j: "; ".join(items) for j, items in notes.items()}


def table_rows(result: WhyResult) -> list[list[str]]:
    """``fact | in core | dropped alone | counterexample`` rows."""
    rows = []
    for r in result.facts:
        d = r.dropped
        verdict = {
            "violated": "violated",
            "holds": f"holds to depth {d.depth}",
            "unknown": f"unknown ({d.reason})",
        }[d.verdict]
        if r.replaceable:
            verdict += " (replaceable)"
        length = f"{d.depth} steps" if d.verdict == "violated" else "-"
        rows.append([r.fact.name, "yes" if r.in_core else "no", verdict, length])
    return rows
