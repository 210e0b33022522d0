"""Unbounded proofs of the section 6.4 invariants by k-induction with simple-path constraints.

Every invariant is a *bad-step* predicate ``BAD(s, c, t)`` (``spec.invariants``): a step
invariant looks at the state before the step and the step, a state invariant at the state after
it. Let a path be ``s_0 -c_0-> s_1 ... -c_k-> s_{k+1}`` with ``T`` between neighbours. For an
invariant ``P`` and a bound ``k >= 1``:

* base case: no path of at most ``k`` steps from the initial state has a bad step (the BMC of
  :func:`spec.bmc.bmc`, run to ``max(k, cover_depth)`` so that the cover targets are checked
  at the same bound);
* step case: there is no path ``s_0 .. s_{k+1}`` from an *arbitrary* state (not necessarily
  reachable) whose first ``k`` steps are good, whose last step is bad, whose pre-states
  ``s_0 .. s_k`` are pairwise distinct (the simple-path constraint), and all of whose states
  satisfy the proved lemmas (``spec.lemmas``).

Both unsat give ``P`` on every path of every length: a shortest path to a first bad step visits
no pre-state twice (a loop could be cut out), its last ``k + 1`` steps are a step-case path when
it is longer than ``k``, and reachable states satisfy the proved lemmas. The step case is
incremental over ``k``: one solver, the path extended at its end, the bad step under an
assumption literal. The lemmas enter under one assumption literal each, so the unsat core names
the lemmas a proof needs; :meth:`LemmaProof.closure` adds what those lemmas' own proof needs.

Verdicts: ``proved`` (for all depths), ``violated`` (a shortest counterexample from the base
case), ``not_inductive`` (the step case still has a counterexample to induction at ``max_k``:
*not* a violation; the CTI is returned), ``unknown`` (a timeout or Z3's unknown, never a pass),
``error`` (bad input).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import z3

from kvmmu.engine import Progress, StateValue
from kvmmu.vocab import INVARIANTS, Config, Step, Variant
from spec.bmc import BmcResult, bmc
from spec.decode import decode_state, decode_step
from spec.invariants import BAD
from spec.lemmas import Lemma, LemmaProof, prove_lemmas
from spec.state import Expr, State
from spec.steps import make_choice
from spec.unroll import SpecSystem, TransitionSystem, make_solver
from spec.variants import (
    FAULT_STEP_PC,
    PC_CRASHED,
    PC_GUEST,
    PC_OUTSIDE,
    Layout,
    make_layout,
)

ProofVerdict = Literal["proved", "violated", "holds", "not_inductive", "unknown", "error"]


@dataclass(frozen=True)
class ProofResult:
    """The answer of :func:`prove` for one invariant.

    ``k``: the step-case bound that closed the proof (``proved``), the counterexample length
    (``violated``), the bound at which the step case still failed (``not_inductive``) or was
    given up (``holds``: the base case holds to ``depth`` but the step case gave no answer, so
    nothing is said beyond that depth; ``unknown``). ``lemmas``: the proved lemmas the proof
    rests on (the unsat core of the step case, closed under the lemmas' own dependencies).
    ``trace``/``states``: the counterexample of a violation. ``cti``/``cti_states``: the
    counterexample to induction of a ``not_inductive``: ``k + 1`` steps and ``k + 2`` states
    from an arbitrary (possibly unreachable) state, decoded like a BMC trace, plus each zapper's
    position (``zapper.at``: the steps it may take next) and the notifier's. ``cover``: per
    cover target, reached (True) or unreachable (False) within ``depth`` steps, the base-case
    bound. ``required_covers``: the targets a non-vacuous proof must reach (see
    :func:`vacuous`).
    """

    invariant: str
    verdict: ProofVerdict
    k: int = 0
    lemmas: tuple[str, ...] = ()
    trace: tuple[Step, ...] = ()
    cti: tuple[Step, ...] = ()
    cover: Mapping[str, bool | None] = field(default_factory=dict)
    seconds: float = 0.0
    z3_version: str = field(default_factory=z3.get_version_string)
    reason: str = ""
    states: tuple[Mapping[str, StateValue], ...] = ()
    cti_states: tuple[Mapping[str, StateValue], ...] = ()
    depth: int = 0
    required_covers: frozenset[str] = frozenset()
    variant: str = ""


def vacuous(result: ProofResult) -> bool:
    """Whether a ``proved`` or ``holds`` is possibly vacuous: some required cover target was not
    shown reachable within the base-case bound."""
    return result.verdict in ("proved", "holds") and any(
        result.cover.get(target) is not True for target in result.required_covers
    )


@dataclass
class _StepCase:
    """The incremental step case of one invariant: the path grows at its end; each lemma holds
    in every state of the path under its own assumption literal."""

    system: TransitionSystem
    invariant: str
    lemmas: Sequence[Lemma]
    lits: Mapping[str, Expr]
    solver: z3.Solver
    states: list[State] = field(default_factory=list)
    choices: list[Expr] = field(default_factory=list)

    def bad(self, i: int) -> Expr:
        return BAD[self.invariant](self.states[i], self.choices[i], self.states[i + 1])

    def add_state(self) -> None:
        n = len(self.states)
        s = self.system.state(f"k{n}")
        for lemma in self.lemmas:
            self.solver.add(z3.Implies(self.lits[lemma.name], lemma.predicate(s)))
        if self.states:
            c = make_choice(self.system.layout, f"k{n - 1}")
            self.solver.add(self.system.relation(self.states[-1], c, s))
            self.choices.append(c)
        self.states.append(s)


def _differ(s: State, t: State) -> Expr:
    return z3.Or([s[name] != t[name] for name in s])


_VCPU_AT: Mapping[int, str] = {
    PC_OUTSIDE: "loop",
    PC_GUEST: "guest",
    PC_CRASHED: "crashed",
    **{pc: step for step, pc in FAULT_STEP_PC.items()},
}


def _decode_cti_state(layout: Layout, model: z3.ModelRef, s: State) -> dict[str, StateValue]:
    out = decode_state(model, s)
    # section 6.7 shows only the mode: a CTI also needs the position in the fault path
    for v in layout.vcpus:
        pc = model.eval(s.pc(v), True).as_long()
        out[f"{v.actor}.at"] = _VCPU_AT.get(pc, f"pc {pc}")
    for z in layout.zappers:
        pc = model.eval(s.zpc(z), True).as_long()
        steps = layout.program.positions[pc] if pc < len(layout.program.positions) else {}
        out[f"{z}.at"] = "|".join(steps) or f"pc {pc}"
    if layout.notifier:
        out["notifier.started"] = bool(z3.is_true(model.eval(s["notifier.started"], True)))
    return out


@dataclass(frozen=True)
class StepOutcome:
    """The answer of :func:`step_case`: ``core`` names the lemmas a proof used, ``cti`` and
    ``cti_states`` are a counterexample to induction."""

    verdict: Literal["proved", "not_inductive", "unknown"]
    k: int
    core: tuple[str, ...] = ()
    cti: tuple[Step, ...] = ()
    cti_states: tuple[Mapping[str, StateValue], ...] = ()
    reason: str = ""


def step_case(
    system: TransitionSystem,
    invariant: str,
    proof: LemmaProof | None,
    max_k: int,
    deadline: float,
    progress: Progress | None = None,
) -> StepOutcome:
    """The step case of ``invariant`` for ``k = 1 .. max_k`` on ``system`` (the spec, or the
    parametric abstraction), with the proved lemmas of ``proof`` under one assumption literal
    each: ``proved`` at the first k with no counterexample to induction, ``not_inductive``
    with the CTI at ``max_k``, ``unknown`` when Z3 gives up or ``deadline`` passes."""
    layout = system.layout
    ctx = layout.ctx
    solver = make_solver(ctx)
    proved = proof.proved if proof is not None else ()
    lits = {lemma.name: z3.Bool(f"use!{lemma.name}", ctx) for lemma in proved}
    case = _StepCase(system, invariant, proved, lits, solver)
    case.add_state()
    case.add_state()
    k_done = 0
    for k in range(1, max_k + 1):
        # s_0 .. s_{k+1}: the first k steps good, the pre-states s_0 .. s_k pairwise distinct
        case.add_state()
        solver.add(z3.Not(case.bad(k - 1)))
        solver.add([_differ(case.states[j], case.states[k]) for j in range(k)])
        if progress is not None:
            progress("k", k)
        left = deadline - time.monotonic()
        if left <= 0:
            return StepOutcome("unknown", k_done, reason="timeout")
        solver.set("timeout", max(1, int(left * 1000)))
        query = z3.Bool(f"bad!{k}", ctx)
        solver.add(z3.Implies(query, case.bad(k)))
        answer = solver.check(query, *lits.values())
        if answer == z3.unsat:
            names = {str(lit): name for name, lit in lits.items()}
            core = tuple(names[str(e)] for e in solver.unsat_core() if str(e) in names)
            return StepOutcome("proved", k, core=core)
        if answer != z3.sat:
            why = str(solver.reason_unknown())
            if why in ("canceled", "timeout"):
                why = "timeout"
            return StepOutcome("unknown", k, reason=why)
        k_done = k
        if k == max_k:
            model = solver.model()
            cti = tuple(decode_step(layout, model, c) for c in case.choices[: k + 1])
            states = tuple(_decode_cti_state(layout, model, s) for s in case.states[: k + 2])
            return StepOutcome(
                "not_inductive",
                k,
                cti=cti,
                cti_states=states,
                reason=f"step case fails at k = {k} (a counterexample to induction)",
            )
    return StepOutcome("not_inductive", 0, reason="max_k < 1: no step case tried")


def prove(
    variant: Variant,
    config: Config,
    invariants: Sequence[str] = INVARIANTS,
    max_k: int = 30,
    timeout_s: float = 300.0,
    lemmas: bool = True,
    cover_depth: int = 20,
    progress: Progress | None = None,
) -> list[ProofResult]:
    """Prove ``invariants`` for every depth, by k-induction (``k = 1 .. max_k``) with the lemmas
    of :mod:`spec.lemmas` that are themselves proved for this variant and configuration
    (none with ``lemmas=False``). One result per invariant, in the order given.

    ``cover_depth``: the base case runs to ``max(k, cover_depth)`` steps, and the cover targets
    are checked to the same bound (a proof whose required covers are not all reached is
    :func:`vacuous`). ``timeout_s`` bounds the whole call; what it cuts short is ``unknown``.
    Deterministic: every solver has a fixed seed, and every run its own Z3 context.
    ``progress`` hears the base case's depths and the step case's k.
    """
    start = time.monotonic()
    deadline = start + timeout_s
    version = z3.get_version_string()

    def error(name: str, reason: str) -> ProofResult:
        return ProofResult(
            name,
            "error",
            seconds=time.monotonic() - start,
            z3_version=version,
            reason=reason,
            variant=variant.name,
        )

    if max_k < 1:
        return [error(name, "max_k must be >= 1") for name in invariants]
    try:
        layout = make_layout(variant, config, horizon=max(max_k + 1, cover_depth))
    except ValueError as exc:
        return [error(name, str(exc)) for name in invariants]
    wanted = [name for name in dict.fromkeys(invariants) if name in BAD]
    try:
        found = _prove(layout, wanted, max_k, deadline, lemmas, cover_depth, start, progress)
    except z3.Z3Exception as exc:  # pragma: no cover - a solver failure
        return [error(name, f"z3: {str(exc)[:200]}") for name in invariants]
    return [
        found[name] if name in found else error(name, f"unknown invariant {name!r}")
        for name in invariants
    ]


def _prove(
    layout: Layout,
    wanted: list[str],
    max_k: int,
    deadline: float,
    use_lemmas: bool,
    cover_depth: int,
    start: float,
    progress: Progress | None = None,
) -> dict[str, ProofResult]:
    variant, config = layout.variant, layout.config

    def left() -> float:
        return max(0.0, deadline - time.monotonic())

    # 1. the lemmas (proved once, for every invariant)
    proof: LemmaProof | None = None
    lemma_note = ""
    if use_lemmas and wanted:
        proof = prove_lemmas(layout, deadline=deadline)
        if any(st == "unknown" for st in proof.status.values()):
            lemma_note = "lemmas not proved (timeout): none used; "
            proof = None
    # 2. the base case and the covers to cover_depth: a violation found there needs no step case
    first = cover_depth
    if layout.knobs.generation == "counter" and config.max_zaps is None:
        # the counter's width follows the horizon: the base case must encode the same model
        first = max(first, layout.horizon)
    base: dict[str, BmcResult] = {}
    if wanted:
        base = {r.invariant: r for r in bmc(variant, config, wanted, first, left(), progress)}
    # 3. the step case of each invariant not violated yet
    steps: dict[str, StepOutcome] = {}
    for name in wanted:
        if base[name].verdict == "violated":
            steps[name] = StepOutcome("unknown", 0, reason="violated: no step case")
        else:
            steps[name] = step_case(SpecSystem(layout), name, proof, max_k, deadline, progress)
    # 4. a longer base case where the step case needs it (or failed: look for a violation)
    deeper = {
        name: max(first, step.k if step.verdict == "proved" else max_k)
        for name, step in steps.items()
        if base[name].verdict != "violated"
    }
    if deeper and max(deeper.values()) > first:
        names = [name for name, bound in deeper.items() if bound > first]
        runs = bmc(variant, config, names, max(deeper.values()), left(), progress)
        base.update({r.invariant: r for r in runs})
    version = z3.get_version_string()
    results: dict[str, ProofResult] = {}
    for name in wanted:
        step, b = steps[name], base[name]
        at = ProofResult(
            name,
            "unknown",
            k=step.k,
            cover=dict(b.cover),
            z3_version=version,
            required_covers=b.required_covers,
            variant=variant.name,
            depth=b.depth,
        )
        if b.verdict == "violated":
            # a real counterexample beats whatever the step case said
            at = replace(
                at,
                verdict="violated",
                k=b.depth,
                trace=b.trace,
                states=b.states,
                reason="base case: a counterexample from the initial state",
            )
        elif b.verdict != "holds":
            at = replace(at, reason=f"base case {b.verdict}: {b.reason}")
        elif step.verdict == "proved":
            used = proof.closure(step.core) if proof is not None else ()
            why = f"{step.k}-inductive, base case to depth {b.depth}"
            at = replace(at, verdict="proved", lemmas=used, reason=why)
        elif step.verdict == "not_inductive":
            at = replace(
                at,
                verdict="not_inductive",
                cti=step.cti,
                cti_states=step.cti_states,
                reason=step.reason,
            )
        else:
            # the step case gave no answer (a timeout, or Z3's unknown): what stands is the base
            # case, a bounded result, reported as such and never as a proof
            why = f"holds to depth {b.depth} only; step case: {step.reason}"
            at = replace(at, verdict="holds", reason=why)
        results[name] = replace(at, reason=lemma_note + at.reason, seconds=time.monotonic() - start)
    return results


def render(result: ProofResult) -> str:
    """A human-readable report of one proof result."""
    head = f"{result.invariant}: {result.verdict} (k {result.k}, {result.seconds:.2f}s)"
    lines = [head]
    if result.reason:
        lines.append(f"  reason: {result.reason}")
    if result.lemmas:
        lines.append(f"  lemmas: {', '.join(result.lemmas)}")
    for i, step in enumerate(result.trace):
        lines.append(f"  {i + 1:3d}. {step}")
    if result.cti:
        lines.append("  counterexample to induction (from an arbitrary state):")
        for i, state in enumerate(result.cti_states):
            shown = ", ".join(f"{k}={v}" for k, v in state.items() if v is not None)
            lines.append(f"      s{i}: {shown}")
            if i < len(result.cti):
                lines.append(f"  {i + 1:3d}. {result.cti[i]}")
    if result.verdict == "proved":
        reached = ", ".join(t for t, ok in result.cover.items() if ok) or "none"
        lines.append(f"  covers reached within {result.depth} steps: {reached}")
        if vacuous(result):
            missing = [t for t in sorted(result.required_covers) if result.cover.get(t) is not True]
            lines.append(f"  VACUOUS? required covers not reached: {', '.join(missing)}")
    return "\n".join(lines)
