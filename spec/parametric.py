"""Parametric proofs: the section 6.4 invariants for *any* number of vCPUs.

The concrete proofs (:mod:`spec.induction`) fix the number of vCPUs. This module proves an
invariant once for every number of vCPUs by a *distinguished-vCPU abstraction* (``docs/
parametric.md`` states the argument in full):

* one vCPU ``d`` (named ``vcpu0``, of one root kind; each kind of ``kinds`` is proved in turn),
  the zapper(s) and the notifier are modelled exactly as in the spec: the same step builders of
  :mod:`spec.steps`, the same invariants and cover targets of
  :mod:`spec.invariants`;
* every other vCPU is folded into an *environment* ``env`` whose only visible state is what the
  others hold of ``mmu_lock``: ``env.writer`` (some other vCPU holds it for write) and
  ``env.readers`` (some other vCPU holds it for read), with four steps that obey the lock
  discipline: ``env lock.write`` (lock free), ``env unlock.write``, ``env lock.read`` (no
  writer), ``env unlock.read`` (the last reader leaves). An environment vCPU that crashed holding
  the lock simply never releases it.

Every concrete step of another vCPU is an ``env`` step or changes nothing the abstraction sees
(a stutter), and every step of ``d``, a zapper or the notifier is the same step of the abstraction,
with a guard that reads the other vCPUs only through ``mmu_lock``. So every trace of the concrete
model with any number of vCPUs projects, for each vCPU ``u``, to a trace of the abstraction with
``d := u``; a per-vCPU bad step of ``u`` becomes the same bad step of ``d``. Proving "``d`` never
steps badly" in the abstraction (by k-induction with Houdini lemmas, like the concrete proofs)
proves the invariant for every vCPU of every configuration whose vCPUs' root kinds are in
``kinds``.

A violation of the abstraction is reported as ``violated`` only once it is *confirmed*: the same
invariant is violated in the concrete spec with a small number of vCPUs (bounded model checking
through :func:`kvmmu.prover.check`), whose N and length are reported. An unconfirmed abstract
counterexample gives ``unknown``.

Nothing here changes the spec: the abstraction reuses the spec's ``Layout`` (with the ``env``
steps appended to its step choices), its state (a subclass of :class:`State` whose ``mmu_lock``
also counts the environment's holds), its step builders, ``encode``, invariants, covers and
per-vCPU lemma families. Copied, in small: the dispatch of :func:`spec.steps.transitions`
(it asserts the spec's own step list), the Houdini loop of :func:`spec.lemmas.prove_lemmas`
and the step case of :mod:`spec.induction` (both build states with ``make_state``, which
knows no environment), and ``mmu_lock_exclusive`` (to count the environment as a holder).

Run: ``python -m spec.parametric --preset v5.16 --invariant no_spte_in_obsolete_root``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import z3

from kvmmu.engine import StateValue
from kvmmu.vocab import (
    INVARIANTS,
    PRESETS,
    ROOT_KINDS,
    Config,
    KnobValue,
    Step,
    Variant,
    bound_error,
    config_error,
    make_variant,
    override,
    timeout_error,
)
from spec.decode import decode_state, decode_step
from spec.invariants import BAD, COVER, required_covers
from spec.lemmas import Lemma, candidates
from spec.state import Expr, State, initial, make_state
from spec.steps import (
    Transition,
    encode,
    is_choice,
    make_choice,
    transition,
)
from spec.unroll import make_solver
from spec.variants import PC_LOCK, PCS_HOLDING_LOCK, Layout, make_layout

ENV = "env"
ENV_WRITER = "env.writer"
ENV_READERS = "env.readers"
ENV_STEP_NAMES: tuple[str, ...] = ("lock.write", "unlock.write", "lock.read", "unlock.read")
ENV_BLOCKS = "env.blocks_fault.lock"  # an informational cover: the environment is not vacuous
DEFAULT_KINDS: tuple[str, ...] = ("special", "sp", "tdp")
MAIN_INVARIANTS: tuple[str, ...] = (
    "no_spte_in_obsolete_root",
    "no_guest_on_obsolete_root",
    "no_use_after_free",
    "no_stale_pfn",
)

ParametricVerdict = Literal["proved", "violated", "not_inductive", "vacuous", "unknown", "error"]


# --- the abstraction -----------------------------------------------------------------------------


class EnvState(State):
    """A time frame of the abstraction: the spec's variables of ``d``, the zappers and the
    notifier, plus ``env.writer`` and ``env.readers``. ``mmu_lock`` counts the environment's
    holds, so every spec step that tests the lock (``fault.lock``, ``vcpu.load``,
    ``vcpu.unload``, ``zap.lock``, ``zap.relock``, ``mn.start``, ``mn.end``) sees them."""

    def has_writer(self) -> Expr:
        return z3.Or(super().has_writer(), self.vars[ENV_WRITER])

    def has_readers(self) -> Expr:
        return z3.Or(super().has_readers(), self.vars[ENV_READERS])


@dataclass(frozen=True)
class Abstraction:
    """The distinguished vCPU ``vcpu0`` of root kind ``kind``, the zappers, the notifier, and the
    environment. ``layout`` is the spec's layout of the one-vCPU configuration with the ``env``
    steps appended to its choices; ``env_modes`` the lock modes the environment may take (those
    of the root kinds the other vCPUs may have)."""

    layout: Layout
    kind: str
    env_modes: frozenset[str]

    def state(self, suffix: str) -> EnvState:
        base = make_state(self.layout, suffix)
        names = dict(base.vars)
        for name in (ENV_WRITER, ENV_READERS):
            names[name] = z3.Bool(f"{name}@{suffix}", self.layout.ctx)
        return EnvState(self.layout, names)

    def initial(self, s: State) -> Expr:
        """The spec's initial state; no other vCPU holds ``mmu_lock``."""
        return z3.And(initial(s), z3.Not(s[ENV_WRITER]), z3.Not(s[ENV_READERS]))

    def transitions(self, s: State) -> tuple[Transition, ...]:
        """Every transition, in the order of ``layout.choices`` (the dispatch of
        :func:`spec.steps.transitions`, plus the environment)."""
        layout = self.layout
        result: list[Transition] = []
        for step in layout.choices:
            result.append(self._env(s, step.name) if step.actor == ENV else transition(s, step))
        return tuple(result)

    def _env(self, s: State, name: str) -> Transition:
        """The environment's lock steps: what the other vCPUs' ``fault.lock`` (write: the lock
        free; read: no writer) and ``fault.unlock`` do to ``mmu_lock``."""
        step = Step(ENV, name)
        true, false = s.const(True), s.const(False)
        if name == "lock.write":
            allowed = "write" in self.env_modes
            return Transition(step, z3.And(s.const(allowed), s.lock_free()), {ENV_WRITER: true})
        if name == "unlock.write":
            return Transition(step, s[ENV_WRITER], {ENV_WRITER: false})
        if name == "lock.read":
            allowed = "read" in self.env_modes
            guard = z3.And(s.const(allowed), z3.Not(s.has_writer()))
            return Transition(step, guard, {ENV_READERS: true})
        if name == "unlock.read":
            return Transition(step, s[ENV_READERS], {ENV_READERS: false})
        raise ValueError(f"no environment step {name!r}")

    def relation(self, s: State, c: Expr, t: State) -> Expr:
        """``T(s, c, t)`` of the abstraction (the spec's :func:`encode`, frame included)."""
        return encode(s, c, t, self.transitions(s))

    def took_env(self, c: Expr) -> Expr:
        """The step ``c`` is an environment step."""
        codes = [self.layout.code(Step(ENV, n)) for n in ENV_STEP_NAMES]
        return z3.Or([is_choice(self.layout, c, code) for code in codes if code is not None])


def lock_mode(variant: Variant, kind: str) -> str:
    """The mode in which a vCPU of root kind ``kind`` takes ``mmu_lock`` in ``fault.lock`` (the
    spec's layout decides)."""
    return make_layout(variant, Config(vcpus=(kind,)), 1).vcpus[0].lock_mode


def make_abstraction(
    variant: Variant,
    kind: str,
    env_kinds: Sequence[str] = DEFAULT_KINDS,
    zappers: int = 1,
    notifier: bool = True,
    max_zaps: int | None = None,
    max_invalidations: int | None = None,
    horizon: int = 32,
) -> Abstraction:
    """The abstraction for a distinguished vCPU of root kind ``kind`` among other vCPUs of root
    kinds ``env_kinds``; raises ValueError on a bad variant or configuration."""
    config = Config(
        vcpus=(kind,),
        zappers=zappers,
        notifier=notifier,
        max_zaps=max_zaps,
        max_invalidations=max_invalidations,
    )
    base = make_layout(variant, config, horizon)
    env = tuple(Step(ENV, name) for name in ENV_STEP_NAMES)
    layout = replace(base, choices=base.choices + env)
    modes = frozenset(lock_mode(variant, k) for k in env_kinds)
    return Abstraction(layout, kind, modes)


# --- lemmas -------------------------------------------------------------------------------------


def mmu_lock_exclusive_env(s: State) -> Expr:
    """``rwlock_t mmu_lock`` with the environment as two more holders (a writer, readers):
    no two holders at once unless both are readers."""
    layout = s.layout
    holders: list[tuple[bool, Expr]] = []
    for v in layout.vcpus:
        holders.append((v.lock_mode == "write", s.at(v, *PCS_HOLDING_LOCK)))
    holders += [(True, s.zapper_holds_mmu_lock(z)) for z in layout.zappers]
    holders += [(True, s[ENV_WRITER]), (False, s[ENV_READERS])]
    clauses = [
        z3.Not(z3.And(hi, hj))
        for i, (wi, hi) in enumerate(holders)
        for wj, hj in holders[i + 1 :]
        if wi or wj
    ]
    return z3.And(clauses)


def abstract_candidates(layout: Layout) -> tuple[Lemma, ...]:
    """The spec's candidate lemmas for ``d`` (:func:`spec.lemmas.candidates` of the
    one-vCPU layout), with ``mmu_lock_exclusive`` counting the environment."""
    out: list[Lemma] = []
    for lemma in candidates(layout):
        if lemma.family == "mmu_lock_exclusive":
            out.append(Lemma(lemma.name, lemma.family, mmu_lock_exclusive_env))
        else:
            out.append(lemma)
    return tuple(out)


@dataclass(frozen=True)
class _Houdini:
    proved: tuple[Lemma, ...]
    depends: Mapping[str, tuple[str, ...]]
    gave_up: str = ""

    def closure(self, names: Sequence[str]) -> tuple[str, ...]:
        todo, seen = list(names), set[str]()
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo += self.depends.get(name, ())
        return tuple(x.name for x in self.proved if x.name in seen)


def _set_timeout(solver: z3.Solver, deadline: float) -> bool:
    left = deadline - time.monotonic()
    solver.set("timeout", max(1, int(left * 1000)))
    return left > 0


def _houdini(a: Abstraction, deadline: float) -> _Houdini:
    """The largest jointly inductive subset of the candidates, on the abstraction (the loop of
    :func:`spec.lemmas.prove_lemmas`, over the abstract transition relation)."""
    layout, ctx = a.layout, a.layout.ctx
    pool = abstract_candidates(layout)
    init = make_solver(ctx)
    s0 = a.state("h0")
    init.add(a.initial(s0))
    alive: list[Lemma] = []
    for lemma in pool:
        if not _set_timeout(init, deadline):
            return _Houdini((), {}, "timeout")
        answer = init.check(z3.Not(lemma.predicate(s0)))
        if answer == z3.unsat:
            alive.append(lemma)
        elif answer != z3.sat:
            return _Houdini((), {}, str(init.reason_unknown()))
    solver = make_solver(ctx)
    s, t = a.state("h0"), a.state("h1")
    solver.add(a.relation(s, make_choice(layout, "h0"), t))
    lits = {x.name: z3.Bool(f"lemma!{i}", ctx) for i, x in enumerate(pool)}
    for x in pool:
        solver.add(z3.Implies(lits[x.name], x.predicate(s)))
    after = {x.name: x.predicate(t) for x in pool}
    queries = 0
    while alive:
        queries += 1
        query = z3.Bool(f"houdini!{queries}", ctx)
        solver.add(z3.Implies(query, z3.Or([z3.Not(after[x.name]) for x in alive])))
        if not _set_timeout(solver, deadline):
            return _Houdini((), {}, "timeout")
        answer = solver.check(query, *[lits[x.name] for x in alive])
        if answer == z3.unsat:
            break
        if answer != z3.sat:
            return _Houdini((), {}, str(solver.reason_unknown()))
        model = solver.model()
        alive = [x for x in alive if not z3.is_false(model.eval(after[x.name], True))]
    depends: dict[str, tuple[str, ...]] = {}
    by_lit = {str(lits[x.name]): x.name for x in alive}
    for x in alive:
        queries += 1
        query = z3.Bool(f"houdini!{queries}", ctx)
        solver.add(z3.Implies(query, z3.Not(after[x.name])))
        if not _set_timeout(solver, deadline):
            return _Houdini((), {}, "timeout")
        if solver.check(query, *[lits[y.name] for y in alive]) != z3.unsat:
            return _Houdini((), {}, str(solver.reason_unknown()))
        core = {str(e) for e in solver.unsat_core()}
        depends[x.name] = tuple(by_lit[c] for c in sorted(core) if c in by_lit)
    return _Houdini(tuple(alive), depends)


# --- bounded search and the step case on the abstraction ----------------------------------------

StepPredicate = Callable[[State, Expr, State], Expr]


def _decode(a: Abstraction, model: z3.ModelRef, s: State) -> dict[str, StateValue]:
    out = decode_state(model, s)
    for name in (ENV_WRITER, ENV_READERS):
        out[name] = bool(z3.is_true(model.eval(s[name], True)))
    return out


@dataclass
class _Path:
    """An incremental unrolling of the abstraction from its initial state."""

    a: Abstraction
    solver: z3.Solver
    states: list[State] = field(default_factory=list)
    choices: list[Expr] = field(default_factory=list)
    literals: int = 0

    @staticmethod
    def start(a: Abstraction) -> _Path:
        path = _Path(a, make_solver(a.layout.ctx))
        path.states.append(a.state("0"))
        path.solver.add(a.initial(path.states[0]))
        return path

    def extend(self) -> tuple[State, Expr, State]:
        k = len(self.choices)
        s, t = self.states[-1], self.a.state(str(k + 1))
        c = make_choice(self.a.layout, str(k))
        self.solver.add(self.a.relation(s, c, t))
        self.states.append(t)
        self.choices.append(c)
        return s, c, t

    def ask(self, formula: Expr, deadline: float) -> z3.CheckSatResult:
        self.literals += 1
        lit = z3.Bool(f"ask!{self.literals}", self.a.layout.ctx)
        self.solver.add(z3.Implies(lit, formula))
        if not _set_timeout(self.solver, deadline):
            return z3.unknown
        return self.solver.check(lit)

    def trace(self, length: int) -> tuple[tuple[Step, ...], tuple[dict[str, StateValue], ...]]:
        model = self.solver.model()
        steps = tuple(decode_step(self.a.layout, model, c) for c in self.choices[:length])
        states = tuple(_decode(self.a, model, s) for s in self.states[: length + 1])
        return steps, states


def env_blocks_fault_lock(a: Abstraction) -> StepPredicate:
    """The step leads to a state where ``d`` waits at ``fault.lock`` and only the environment's
    hold of ``mmu_lock`` keeps it waiting (an informational cover: the environment matters)."""
    v = a.layout.vcpus[0]

    def hit(s: State, c: Expr, t: State) -> Expr:
        # the spec's own holders (d, the zappers), without the environment
        spec_writer, spec_readers = State.has_writer(t), State.has_readers(t)
        if v.lock_mode == "write":
            blocked = z3.Not(t.lock_free())
            free_without_env = z3.And(z3.Not(spec_writer), z3.Not(spec_readers))
        else:
            blocked = t.has_writer()
            free_without_env = z3.Not(spec_writer)
        return z3.And(t.at(v, PC_LOCK), blocked, free_without_env)

    return hit


@dataclass(frozen=True)
class _Bounded:
    verdict: Literal["violated", "holds", "unknown"]
    depth: int
    trace: tuple[Step, ...] = ()
    states: tuple[Mapping[str, StateValue], ...] = ()
    cover: Mapping[str, bool | None] = field(default_factory=dict)
    reason: str = ""


def _bounded(a: Abstraction, invariant: str, depth: int, deadline: float) -> _Bounded:
    """BMC of the abstraction to ``depth`` steps for ``invariant`` and the cover targets (a
    shortest counterexample, as :func:`spec.bmc.bmc` finds them in the spec)."""
    path = _Path.start(a)
    targets: dict[str, StepPredicate] = dict(COVER)
    targets[ENV_BLOCKS] = env_blocks_fault_lock(a)
    cover: dict[str, bool | None] = {name: None for name in targets}
    open_covers = list(targets)
    for i in range(1, depth + 1):
        s, c, t = path.extend()
        bad = BAD[invariant](s, c, t)
        answer = path.ask(bad, deadline)
        if answer == z3.sat:
            trace, states = path.trace(i)
            return _Bounded("violated", i, trace, states, cover)
        if answer != z3.unsat:
            return _Bounded("unknown", i, cover=cover, reason=_why(path.solver))
        path.solver.add(z3.Not(bad))
        while open_covers:
            hits = {name: targets[name](s, c, t) for name in open_covers}
            answer = path.ask(z3.Or(list(hits.values())), deadline)
            if answer != z3.sat:
                if answer != z3.unsat:
                    return _Bounded("unknown", i, cover=cover, reason=_why(path.solver))
                break
            model = path.solver.model()
            for name in list(open_covers):
                if z3.is_true(model.eval(hits[name], True)):
                    cover[name] = True
                    open_covers.remove(name)
    for name in open_covers:
        cover[name] = False
    return _Bounded("holds", depth, cover=cover)


def _why(solver: z3.Solver) -> str:
    why = str(solver.reason_unknown())
    return "timeout" if why in ("canceled", "timeout") else why


@dataclass(frozen=True)
class _Inductive:
    verdict: Literal["proved", "not_inductive", "unknown"]
    k: int
    core: tuple[str, ...] = ()
    cti: tuple[Step, ...] = ()
    reason: str = ""


def _step_case(
    a: Abstraction, invariant: str, lemmas: _Houdini, max_k: int, deadline: float
) -> _Inductive:
    """The k-induction step case of :mod:`spec.induction` on the abstraction: no path
    ``s_0 .. s_{k+1}`` from an arbitrary state satisfying the lemmas, with ``k`` good steps,
    pairwise distinct pre-states, and a bad last step."""
    ctx = a.layout.ctx
    solver = make_solver(ctx)
    lits = {x.name: z3.Bool(f"use!{x.name}", ctx) for x in lemmas.proved}
    states: list[State] = []
    choices: list[Expr] = []

    def add_state() -> None:
        s = a.state(f"k{len(states)}")
        for x in lemmas.proved:
            solver.add(z3.Implies(lits[x.name], x.predicate(s)))
        if states:
            c = make_choice(a.layout, f"k{len(states) - 1}")
            solver.add(a.relation(states[-1], c, s))
            choices.append(c)
        states.append(s)

    add_state()
    add_state()
    for k in range(1, max_k + 1):
        add_state()
        solver.add(z3.Not(BAD[invariant](states[k - 1], choices[k - 1], states[k])))
        for j in range(k):
            solver.add(z3.Or([states[j][n] != states[k][n] for n in states[k]]))
        query = z3.Bool(f"bad!{k}", ctx)
        solver.add(z3.Implies(query, BAD[invariant](states[k], choices[k], states[k + 1])))
        if not _set_timeout(solver, deadline):
            return _Inductive("unknown", k - 1, reason="timeout")
        answer = solver.check(query, *lits.values())
        if answer == z3.unsat:
            names = {str(lit): name for name, lit in lits.items()}
            core = tuple(names[str(e)] for e in solver.unsat_core() if str(e) in names)
            return _Inductive("proved", k, core)
        if answer != z3.sat:
            return _Inductive("unknown", k, reason=_why(solver))
        if k == max_k:
            model = solver.model()
            cti = tuple(decode_step(a.layout, model, c) for c in choices[: k + 1])
            return _Inductive("not_inductive", k, cti=cti, reason=f"step case fails at k = {k}")
    return _Inductive("not_inductive", 0, reason="max_k < 1")


# --- the simulation, mechanically: projections, replays, witnesses -----------------------------


def project(variant: Variant, config: Config, trace: Sequence[Step], u: int) -> tuple[Step, ...]:
    """The abstract trace of a concrete trace, seen from vCPU ``u`` (the simulation of
    ``docs/parametric.md``): ``vcpu<u>`` becomes ``vcpu0`` (``d``), the zappers and the notifier
    stay, another vCPU's ``fault.lock`` becomes ``env lock.<mode>``, its ``fault.unlock``
    becomes ``env unlock.<mode>`` when it was the last other holder in that mode, and every other
    step of another vCPU is a stutter (dropped)."""
    layout = make_layout(variant, config, max(1, len(trace)))
    me = f"vcpu{u}"
    holding: dict[str, str] = {}  # other vCPU -> the mode it holds mmu_lock in
    out: list[Step] = []
    for step in trace:
        v = layout.vcpu(step.actor)
        if v is None:
            out.append(step)
        elif step.actor == me:
            out.append(Step("vcpu0", step.name))
        elif step.name == "fault.lock":
            holding[step.actor] = v.lock_mode
            out.append(Step(ENV, f"lock.{v.lock_mode}"))
        elif step.name == "fault.unlock" and step.actor in holding:
            mode = holding.pop(step.actor)
            if mode not in holding.values():
                out.append(Step(ENV, f"unlock.{mode}"))
    return tuple(out)


def check_simulation(
    variant: Variant,
    kind: str,
    others: Sequence[str],
    zappers: int = 1,
    notifier: bool = True,
    timeout_s: float = 60.0,
) -> bool:
    """Check the simulation step of ``docs/parametric.md`` symbolically for one concrete
    configuration: ``vcpu0`` of root kind ``kind`` is ``d``, ``others`` are the root kinds of the
    other vCPUs. For *every* concrete state ``s`` (reachable or not) and step ``s -> s'`` of the
    spec, ``alpha(s) -> alpha(s')`` is a step of the abstraction or ``alpha(s) = alpha(s')`` (a
    stutter), where ``alpha`` keeps ``d``, the zappers, the notifier and ``mmu_valid_gen`` and
    sets ``env.writer``/``env.readers`` to "some other vCPU holds ``mmu_lock`` for write/read".
    True when Z3 proves it (unsat)."""
    kinds = (kind, *others)
    a = make_abstraction(variant, kind, kinds, zappers, notifier)
    config = Config(kinds, zappers, notifier, None, None)
    concrete = replace(make_layout(variant, config, 32), ctx=a.layout.ctx)
    s, t = make_state(concrete, "c0"), make_state(concrete, "c1")
    step = encode(s, make_choice(concrete, "c0"), t)

    def alpha(x: State, suffix: str) -> EnvState:
        names = {name: x[name] for name in make_state(a.layout, suffix).vars}
        for mode, name in (("write", ENV_WRITER), ("read", ENV_READERS)):
            held = [x.at(v, *PCS_HOLDING_LOCK) for v in concrete.vcpus[1:] if v.lock_mode == mode]
            names[name] = z3.Or(held) if held else x.const(False)
        return EnvState(a.layout, names)

    sa, ta = alpha(s, "a0"), alpha(t, "a1")
    bits = a.layout.choice_bits
    moves = [
        a.relation(sa, z3.BitVecVal(code, bits, a.layout.ctx), ta)
        for code in range(len(a.layout.choices))
    ]
    stutter = z3.And([sa[name] == ta[name] for name in sa])
    solver = make_solver(a.layout.ctx)
    solver.set("timeout", max(1, int(timeout_s * 1000)))
    return bool(solver.check(step, z3.Not(z3.Or(stutter, *moves))) == z3.unsat)


def abstract_replay(a: Abstraction, steps: Sequence[Step]) -> dict[str, StateValue] | None:
    """Run ``steps`` in the abstraction: the last state (section 6.7 paths of ``d`` as
    ``vcpu0.*``, and the environment's holds), or None when some step is not enabled."""
    path = _Path.start(a)
    for step in steps:
        code = a.layout.code(step)
        if code is None:
            return None
        _, c, _ = path.extend()
        path.solver.add(is_choice(a.layout, c, code))
    if path.solver.check() != z3.sat:
        return None
    return _decode(a, path.solver.model(), path.states[-1])


def env_only_blocks(a: Abstraction, timeout_s: float = 60.0) -> bool:
    """Whether the environment can only *block* (checked by Z3): no step of ``d``, a zapper or
    the notifier reads the environment except in a guard that it can only make false, and none
    writes it. Then deleting the ``env`` steps from an abstract trace leaves a trace of the
    one-vCPU spec with the same states of ``d``, the zappers and the notifier."""
    s = a.state("m")
    false = s.const(False)
    pairs = [(s[ENV_WRITER], false), (s[ENV_READERS], false)]
    solver = make_solver(a.layout.ctx)
    solver.set("timeout", max(1, int(timeout_s * 1000)))
    wrong: list[Expr] = []
    for tr in a.transitions(s):
        if tr.step.actor == ENV:
            continue
        if ENV_WRITER in tr.updates or ENV_READERS in tr.updates:
            return False
        wrong.append(z3.And(tr.guard, z3.Not(z3.substitute(tr.guard, *pairs))))
        for value in tr.updates.values():
            wrong.append(z3.And(tr.guard, value != z3.substitute(value, *pairs)))
    return bool(solver.check(z3.Or(wrong)) == z3.unsat)


def witness(
    a: Abstraction, goals: Sequence[StepPredicate], depth: int, timeout_s: float = 60.0
) -> tuple[Step, ...] | None:
    """A shortest trace of the abstraction (at most ``depth`` steps) whose steps hit ``goals``
    in order (each goal on a later step than the previous), or None."""
    deadline = time.monotonic() + timeout_s
    path = _Path.start(a)
    ctx = a.layout.ctx
    done = [z3.BoolVal(False, ctx) for _ in goals]
    for i in range(1, depth + 1):
        s, c, t = path.extend()
        now: list[Expr] = []
        for j, goal in enumerate(goals):
            ready = z3.BoolVal(True, ctx) if j == 0 else done[j - 1]
            flag = z3.Bool(f"goal!{j}@{i}", ctx)
            path.solver.add(flag == z3.Or(done[j], z3.And(ready, goal(s, c, t))))
            now.append(flag)
        done = now
        answer = path.ask(done[-1], deadline) if goals else z3.sat
        if answer == z3.sat:
            return path.trace(i)[0]
        if answer != z3.unsat:
            return None
    return None


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KindResult:
    """The abstraction's answer for a distinguished vCPU of one root kind."""

    kind: str
    verdict: Literal["proved", "violated", "not_inductive", "unknown", "error"]
    k: int = 0
    lemmas: tuple[str, ...] = ()
    trace: tuple[Step, ...] = ()
    states: tuple[Mapping[str, StateValue], ...] = ()
    cti: tuple[Step, ...] = ()
    cover: Mapping[str, bool | None] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    depth: int = 0
    seconds: float = 0.0
    reason: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "verdict": self.verdict,
            "k": self.k,
            "lemmas": list(self.lemmas),
            "trace": [_step_dict(x) for x in self.trace],
            "cti": [_step_dict(x) for x in self.cti],
            "cover": dict(self.cover),
            "cover_required": sorted(self.required),
            "depth": self.depth,
            "seconds": round(self.seconds, 3),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Confirmation:
    """The concrete re-check of an abstract violation: BMC of the spec with the vCPUs
    ``vcpus`` (N = ``len(vcpus)``). ``length``: the concrete counterexample's length."""

    confirmed: bool
    vcpus: tuple[str, ...] = ()
    length: int = 0
    trace: tuple[Step, ...] = ()
    seconds: float = 0.0
    reason: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "confirmed": self.confirmed,
            "n": len(self.vcpus),
            "vcpus": list(self.vcpus),
            "length": self.length,
            "trace": [_step_dict(x) for x in self.trace],
            "seconds": round(self.seconds, 3),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ParametricResult:
    """The parametric verdict for one invariant, for every number of vCPUs whose root kinds are
    in ``kinds``.

    ``verdict``: ``proved`` (every kind's abstraction proved and every required cover reached),
    ``violated`` (an abstract counterexample, ``trace``, confirmed concretely: ``confirmation``),
    ``not_inductive`` (some kind's step case failed at ``max_k``: not a violation), ``vacuous``
    (proved, but a required cover target was not reached by ``d`` for some kind), ``unknown``
    (a timeout, or an abstract violation not confirmed concretely), ``error`` (bad input).
    ``k``: the largest k that closed a kind's proof, or the counterexample's length. ``lemmas``:
    per kind, the lemmas the proof rests on, as ``kind:lemma``. ``cover``: per cover target,
    True when ``d`` of some kind reaches it within the bound, as a concrete cover is reached by
    some vCPU (``per_kind`` has each kind's own; ``env.blocks_fault.lock``: some kind's ``d``
    waited at ``fault.lock`` on the environment alone).
    """

    invariant: str
    verdict: ParametricVerdict
    k: int = 0
    lemmas: tuple[str, ...] = ()
    trace: tuple[Step, ...] = ()
    seconds: float = 0.0
    z3_version: str = field(default_factory=z3.get_version_string)
    reason: str = ""
    cover: Mapping[str, bool | None] = field(default_factory=dict)
    variant: str = ""
    kinds: tuple[str, ...] = ()
    per_kind: tuple[KindResult, ...] = ()
    confirmation: Confirmation | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "invariant": self.invariant,
            "verdict": self.verdict,
            "variant": self.variant,
            "kinds": list(self.kinds),
            "k": self.k,
            "lemmas": list(self.lemmas),
            "trace": [_step_dict(x) for x in self.trace],
            "cover": dict(self.cover),
            "seconds": round(self.seconds, 3),
            "z3": self.z3_version,
            "reason": self.reason,
            "per_kind": [r.as_dict() for r in self.per_kind],
            "confirmation": None if self.confirmation is None else self.confirmation.as_dict(),
        }


def _step_dict(step: Step) -> dict[str, str]:
    return {"actor": step.actor, "step": step.name}


# --- the proof ----------------------------------------------------------------------------------


def _prove_kind(
    a: Abstraction, invariant: str, max_k: int, cover_depth: int, deadline: float
) -> KindResult:
    start = time.monotonic()
    required = required_covers(a.layout)
    done = replace(KindResult(a.kind, "unknown"), required=required)

    def finish(result: KindResult) -> KindResult:
        return replace(result, seconds=time.monotonic() - start)

    base = _bounded(a, invariant, cover_depth, deadline)
    done = replace(done, cover=base.cover, depth=base.depth)
    if base.verdict == "violated":
        reason = "a counterexample of the abstraction from its initial state"
        return finish(
            replace(
                done,
                verdict="violated",
                k=base.depth,
                trace=base.trace,
                states=base.states,
                reason=reason,
            )
        )
    if base.verdict != "holds":
        return finish(replace(done, reason=f"base case: {base.reason}"))
    lemmas = _houdini(a, deadline)
    if lemmas.gave_up:
        return finish(replace(done, reason=f"lemmas: {lemmas.gave_up}"))
    step = _step_case(a, invariant, lemmas, max_k, deadline)
    if step.verdict == "proved" and step.k > cover_depth:
        deeper = _bounded(a, invariant, step.k, deadline)
        if deeper.verdict != "holds":
            return finish(replace(done, reason=f"base case to {step.k}: {deeper.verdict}"))
    if step.verdict == "proved":
        why = f"{step.k}-inductive with the lemmas, base case to depth {max(step.k, base.depth)}"
        used = lemmas.closure(step.core)
        return finish(replace(done, verdict="proved", k=step.k, lemmas=used, reason=why))
    if step.verdict == "not_inductive":
        return finish(
            replace(done, verdict="not_inductive", k=step.k, cti=step.cti, reason=step.reason)
        )
    return finish(replace(done, k=step.k, reason=f"step case: {step.reason}"))


def confirm(
    variant: Variant,
    invariant: str,
    kind: str,
    abstract_trace: Sequence[Step],
    env_kinds: Sequence[str] = DEFAULT_KINDS,
    zappers: int = 1,
    notifier: bool = True,
    max_vcpus: int = 3,
    timeout_s: float = 120.0,
) -> Confirmation:
    """Look for the abstract violation in the concrete spec: BMC (:func:`kvmmu.prover.check`)
    with ``d`` as ``vcpu0`` of root kind ``kind`` and 0, 1, 2, ... other vCPUs (root kinds from
    ``env_kinds``, up to ``max_vcpus`` in all), the first configuration with a violation of
    ``invariant`` wins. The bound is the abstract trace's length, plus 8 steps per environment
    lock acquisition (another vCPU needs about 6 steps to reach ``fault.lock``)."""
    from kvmmu.prover import check

    start = time.monotonic()
    acquisitions = sum(1 for x in abstract_trace if x.actor == ENV and x.name.startswith("lock."))
    depth = len(abstract_trace) + 8 * acquisitions
    others: list[tuple[str, ...]] = [()]
    if acquisitions:
        level: list[tuple[str, ...]] = [()]
        for _ in range(max_vcpus - 1):
            level = [(*o, k) for o in level for k in env_kinds if not o or k >= o[-1]]
            others += level
    tried: list[str] = []
    for extra in others:
        left = timeout_s - (time.monotonic() - start)
        if left <= 0:
            break
        vcpus = (kind, *extra)
        config = Config(
            vcpus=vcpus, zappers=zappers, notifier=notifier, max_zaps=None, max_invalidations=None
        )
        verdict = check(variant, config, [invariant], "bmc", depth, left)[0]
        tried.append(",".join(vcpus))
        if verdict.verdict == "violated":
            return Confirmation(
                True,
                vcpus,
                len(verdict.trace),
                verdict.trace,
                time.monotonic() - start,
                f"concrete BMC with vCPUs {','.join(vcpus)}: violated in {len(verdict.trace)}",
            )
    return Confirmation(
        False,
        seconds=time.monotonic() - start,
        reason=f"no concrete violation within {depth} steps for vCPUs {'; '.join(tried)}",
    )


def prove_parametric(
    variant: Variant | str,
    invariant: str,
    kinds: Sequence[str] = DEFAULT_KINDS,
    zappers: int = 1,
    notifier: bool = True,
    max_k: int = 30,
    timeout_s: float = 300.0,
    *,
    max_zaps: int | None = None,
    max_invalidations: int | None = None,
    cover_depth: int = 20,
    confirm_max_vcpus: int = 3,
) -> ParametricResult:
    """Prove ``invariant`` for every number of vCPUs whose root kinds are in ``kinds`` (with
    ``zappers`` zappers and the notifier when ``notifier``), by the distinguished-vCPU
    abstraction, one root kind of ``d`` at a time. ``variant``: a :class:`Variant` or a preset
    name. ``max_zaps``/``max_invalidations``: None (unbounded, the default) for a proof about
    every run. ``cover_depth``: the base case and the cover targets are checked to that many
    steps. A violation is confirmed concretely (:func:`confirm`, at most ``confirm_max_vcpus``
    vCPUs). ``timeout_s`` bounds the whole call; what it cuts short is ``unknown``."""
    start = time.monotonic()
    deadline = start + timeout_s
    name = variant if isinstance(variant, str) else variant.name
    kinds = tuple(kinds)

    def error(reason: str) -> ParametricResult:
        return ParametricResult(
            invariant,
            "error",
            seconds=time.monotonic() - start,
            reason=reason,
            variant=name,
            kinds=kinds,
        )

    if invariant not in BAD:
        return error(f"unknown invariant {invariant!r} (known: {', '.join(INVARIANTS)})")
    if not kinds or any(k not in ROOT_KINDS for k in kinds):
        return error(f"kinds must be a non-empty list of {', '.join(ROOT_KINDS)}")
    if max_k < 1:
        return error("max_k must be >= 1")
    try:
        var = make_variant(variant) if isinstance(variant, str) else variant
        config = Config(kinds, zappers, notifier, max_zaps, max_invalidations)
        reason = config_error(config)
        if reason:
            raise ValueError(reason)
        abstractions = [
            make_abstraction(
                var,
                kind,
                kinds,
                zappers,
                notifier,
                max_zaps,
                max_invalidations,
                horizon=max(max_k + 1, cover_depth),
            )
            for kind in dict.fromkeys(kinds)
        ]
    except ValueError as exc:
        return error(str(exc))
    # The all-N claim rests on the simulation argument: check it for this variant, with one
    # other vCPU of every kind (an environment step is one other vCPU's step), before any proof.
    for a in abstractions:
        remaining = max(1.0, deadline - time.monotonic())
        if not check_simulation(var, a.kind, kinds, zappers, notifier, remaining):
            return replace(
                error(f"the abstraction does not simulate the spec for d of kind {a.kind}"),
                verdict="unknown",
            )
        if not env_only_blocks(a, remaining):
            return replace(
                error(f"the environment may do more than block d of kind {a.kind}"),
                verdict="unknown",
            )
    per_kind: list[KindResult] = []
    try:
        for a in abstractions:
            result = _prove_kind(a, invariant, max_k, cover_depth, deadline)
            per_kind.append(result)
            if result.verdict == "violated":
                break
    except z3.Z3Exception as exc:  # pragma: no cover - a solver failure
        return error(f"z3: {str(exc)[:200]}")
    return _combine(var, invariant, kinds, zappers, notifier, per_kind, start, confirm_max_vcpus)


def _combine(
    variant: Variant,
    invariant: str,
    kinds: tuple[str, ...],
    zappers: int,
    notifier: bool,
    per_kind: list[KindResult],
    start: float,
    confirm_max_vcpus: int,
) -> ParametricResult:
    targets = [*COVER, ENV_BLOCKS]
    cover: dict[str, bool | None] = {}
    for target in targets:
        # as in the concrete model, a cover is reached when some vCPU reaches it: here the
        # distinguished vCPU of some kind (paolo's special-root d cannot retry, its sp d can)
        reached = any(r.cover.get(target) is True for r in per_kind)
        needed = any(target in r.required for r in per_kind)
        cover[target] = reached if (needed or reached or target == ENV_BLOCKS) else None
    lemmas = tuple(f"{r.kind}:{x}" for r in per_kind for x in r.lemmas)
    base = ParametricResult(
        invariant,
        "unknown",
        k=max((r.k for r in per_kind), default=0),
        lemmas=lemmas,
        cover=cover,
        variant=variant.name,
        kinds=kinds,
        per_kind=tuple(per_kind),
    )
    verdicts = [r.verdict for r in per_kind]
    if "violated" in verdicts:
        bad = per_kind[verdicts.index("violated")]
        conf = confirm(
            variant,
            invariant,
            bad.kind,
            bad.trace,
            kinds,
            zappers,
            notifier,
            confirm_max_vcpus,
        )
        where = f"d of kind {bad.kind}: abstract counterexample in {len(bad.trace)} steps; "
        if conf.confirmed:
            out = replace(
                base, verdict="violated", k=len(bad.trace), trace=bad.trace, confirmation=conf
            )
            out = replace(out, reason=where + conf.reason)
        else:
            out = replace(base, trace=bad.trace, confirmation=conf, reason=where + conf.reason)
    elif all(v == "proved" for v in verdicts):
        # Each kind's proof must be non-vacuous on its own: its d maps, sees a zap and re-enters
        # after a reload. Retries count as in the concrete model, by some vCPU: a special-root d
        # under paolo can never retry for obsolescence, which is the finding, not a vacuity.
        retries = {"retry.obsolete", "retry.notifier"}
        missing = sorted(
            {
                f"{t} (d of kind {r.kind})"
                for r in per_kind
                for t in r.required - retries
                if r.cover.get(t) is not True
            }
            | {t for r in per_kind for t in r.required & retries if cover.get(t) is not True}
        )
        if missing:
            out = replace(base, verdict="vacuous", reason=f"required covers not reached: {missing}")
        else:
            ks = ", ".join(f"{r.kind} k={r.k}" for r in per_kind)
            out = replace(base, verdict="proved", reason=f"proved for every N ({ks})")
    else:
        worst = next((v for v in ("error", "unknown", "not_inductive") if v in verdicts), "unknown")
        why = "; ".join(
            f"{r.kind}: {r.verdict} ({r.reason})" for r in per_kind if r.verdict == worst
        )
        out = replace(base, verdict=worst, reason=why)  # type: ignore[arg-type]
    return replace(out, seconds=time.monotonic() - start)


# --- the cross-check against the concrete proofs ------------------------------------------------


def concrete_config(
    n: int, kinds: Sequence[str] = DEFAULT_KINDS, zappers: int = 1, notifier: bool = True
) -> Config:
    """``n`` vCPUs, their root kinds cycling through ``kinds``; zaps and invalidations
    unbounded, as in the parametric proof."""
    vcpus = tuple(kinds[i % len(kinds)] for i in range(n))
    return Config(vcpus, zappers, notifier, max_zaps=None, max_invalidations=None)


@dataclass(frozen=True)
class CrossCheck:
    """The parametric verdict next to the concrete k-induction verdicts for 1..N vCPUs."""

    variant: str
    invariant: str
    parametric: str
    concrete: Mapping[int, str]
    seconds: Mapping[int, float]

    @property
    def agrees(self) -> bool:
        """The concrete verdicts are the parametric one (a vacuous concrete proof counts as
        proved when only covers that a smaller configuration cannot reach are missing)."""
        return all(v == self.parametric for v in self.concrete.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "variant": self.variant,
            "invariant": self.invariant,
            "parametric": self.parametric,
            "concrete": {str(n): v for n, v in self.concrete.items()},
            "seconds": {str(n): round(t, 2) for n, t in self.seconds.items()},
            "agrees": self.agrees,
        }


def cross_check(
    variant: Variant,
    invariants: Sequence[str],
    parametric: Mapping[str, str],
    max_vcpus: int = 4,
    kinds: Sequence[str] = DEFAULT_KINDS,
    max_k: int = 4,
    timeout_s: float = 600.0,
) -> list[CrossCheck]:
    """Run the concrete k-induction (:func:`spec.induction.prove`, its own lemmas) for 1
    to ``max_vcpus`` vCPUs (kinds cycling through ``kinds``) on ``invariants`` and set each
    verdict beside ``parametric[invariant]``."""
    from spec.induction import prove

    concrete: dict[str, dict[int, str]] = {x: {} for x in invariants}
    seconds: dict[str, dict[int, float]] = {x: {} for x in invariants}
    for n in range(1, max_vcpus + 1):
        config = concrete_config(n, kinds)
        for r in prove(variant, config, invariants, max_k=max_k, timeout_s=timeout_s):
            concrete[r.invariant][n] = r.verdict
            seconds[r.invariant][n] = r.seconds
    return [CrossCheck(variant.name, x, parametric[x], concrete[x], seconds[x]) for x in invariants]


# --- command line -------------------------------------------------------------------------------

EXIT_BAD_INPUT = 2
_EXIT: Mapping[str, int] = {
    "proved": 0,
    "violated": 1,
    "unknown": 3,
    "error": 3,
    "vacuous": 4,
    "not_inductive": 5,
}


def render(result: ParametricResult) -> str:
    """A human-readable report of one parametric result."""
    scope = f"any number of vCPUs of root kinds {','.join(result.kinds)}"
    lines = [
        f"{result.invariant}: {result.verdict} ({scope}; {result.variant}, k {result.k}, "
        f"{result.seconds:.2f}s)"
    ]
    if result.reason:
        lines.append(f"  reason: {result.reason}")
    for r in result.per_kind:
        lines.append(f"  d of kind {r.kind}: {r.verdict}, k {r.k}, {r.seconds:.2f}s")
        if r.lemmas:
            lines.append(f"    lemmas: {', '.join(r.lemmas)}")
    for i, step in enumerate(result.trace):
        lines.append(f"  {i + 1:3d}. {step}")
    conf = result.confirmation
    if conf is not None and conf.confirmed:
        lines.append(f"  confirmed concretely with N = {len(conf.vcpus)} in {conf.length} steps")
    reached = ", ".join(t for t, ok in result.cover.items() if ok) or "none"
    lines.append(f"  covers reached: {reached}")
    return "\n".join(lines)


def _knob(text: str) -> tuple[str, KnobValue]:
    if "=" not in text:
        raise ValueError(f"--knob takes KNOB=VALUE, got {text!r}")
    knob, raw = (part.strip() for part in text.split("=", 1))
    if not raw:
        raise ValueError(f"--knob {text}: no value after '='")
    return knob, {"true": True, "false": False}.get(raw.lower(), raw)


def _knobs(texts: Sequence[str]) -> dict[str, KnobValue]:
    knobs: dict[str, KnobValue] = {}
    for knob, value in map(_knob, texts):
        if knob in knobs:
            raise ValueError(f"--knob {knob} is given twice")
        knobs[knob] = value
    return knobs


def main(argv: Sequence[str] | None = None, prog: str = "kvmmu parametric") -> int:
    """``kvmmu parametric`` (or ``python -m spec.parametric``): the parametric verdicts,
    optionally cross-checked against the concrete k-induction for 1 to ``--cross-check`` vCPUs."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Prove invariants for any number of vCPUs (distinguished-vCPU abstraction).",
    )
    parser.add_argument("--preset", default="v5.16", help=f"one of {', '.join(PRESETS)}")
    parser.add_argument("--knob", action="append", default=[], metavar="KNOB=VALUE")
    parser.add_argument(
        "--invariant", action="append", default=[], help="repeatable (default: the four main)"
    )
    parser.add_argument("--kinds", default=",".join(DEFAULT_KINDS), help="root kinds, e.g. sp,tdp")
    parser.add_argument("--zappers", type=int, default=1)
    parser.add_argument("--no-notifier", action="store_true")
    parser.add_argument("--max-k", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--cross-check",
        type=int,
        default=0,
        metavar="N",
        help="also run the concrete k-induction for 1..N vCPUs and compare",
    )
    parser.add_argument("--json", action="store_true")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_BAD_INPUT if exc.code else 0
    try:
        variant = make_variant(args.preset)
        variant = override(variant, _knobs(args.knob))
        invariants = list(args.invariant) or list(MAIN_INVARIANTS)
        for name in invariants:
            if name not in BAD:
                raise ValueError(f"unknown invariant {name!r} (known: {', '.join(INVARIANTS)})")
        kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
        config = Config(kinds, args.zappers, not args.no_notifier, None, None)
        reason = config_error(config)
        if reason:
            raise ValueError(reason)
        for option, reason in (
            ("--max-k", bound_error(args.max_k)),
            ("--timeout", timeout_error(args.timeout)),
            ("--cross-check", bound_error(args.cross_check, minimum=0)),
        ):
            if reason is not None:
                raise ValueError(f"{option}: {reason}")
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    results = [
        prove_parametric(
            variant,
            name,
            kinds,
            args.zappers,
            not args.no_notifier,
            args.max_k,
            args.timeout,
        )
        for name in invariants
    ]
    checks: list[CrossCheck] = []
    if args.cross_check:
        verdicts = {r.invariant: r.verdict for r in results}
        checks = cross_check(variant, invariants, verdicts, args.cross_check, kinds)
    status = max((_EXIT[r.verdict] for r in results), default=0)
    if "violated" in (r.verdict for r in results):
        status = 1
    if checks and not all(c.agrees for c in checks):
        status = 1
    if args.json:
        out: dict[str, object] = {
            "variant": {"name": variant.name, "knobs": variant.as_dict()},
            "results": [r.as_dict() for r in results],
            "exit": status,
        }
        if checks:
            out["cross_check"] = [c.as_dict() for c in checks]
        print(json.dumps(out, indent=2))
    else:
        for r in results:
            print(render(r))
        for c in checks:
            shown = ", ".join(f"N={n}: {v} ({c.seconds[n]:.1f}s)" for n, v in c.concrete.items())
            mark = "agrees" if c.agrees else "DISAGREES"
            print(f"cross-check {c.invariant}: parametric {c.parametric}; {shown}: {mark}")
    return status


if __name__ == "__main__":
    sys.exit(main())
