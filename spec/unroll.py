"""An incremental unrolling of the transition relation: one solver, states ``s_0 .. s_k`` and step
choices ``c_0 .. c_{k-1}``, extended one step at a time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import z3

from spec.state import Expr, State, initial, make_state
from spec.steps import encode, make_choice
from spec.variants import Layout

SEED = 0


class TransitionSystem(Protocol):
    """What the lemma proof (:func:`spec.lemmas.prove_lemmas`) and the k-induction step case
    (:func:`spec.induction.step_case`) need of a model: its time frames, initial states and
    transition relation. The spec is one (:class:`SpecSystem`); the parametric abstraction
    (:class:`spec.parametric.Abstraction`) is another, so each engine exists once."""

    @property
    def layout(self) -> Layout: ...

    def state(self, suffix: str) -> State: ...

    def initial(self, s: State) -> Expr: ...

    def relation(self, s: State, c: Expr, t: State) -> Expr: ...


@dataclass(frozen=True)
class SpecSystem:
    """The spec as a :class:`TransitionSystem`: :func:`make_state`, :func:`initial`,
    :func:`encode`."""

    layout: Layout

    def state(self, suffix: str) -> State:
        return make_state(self.layout, suffix)

    def initial(self, s: State) -> Expr:
        return initial(s)

    def relation(self, s: State, c: Expr, t: State) -> Expr:
        return encode(s, c, t)


def make_solver(ctx: Any) -> Any:
    """A solver with a fixed random seed, so that runs are deterministic.

    ``QF_BV`` gives Z3's incremental SAT solver on the bit-blasted formulas (the default solver,
    Z3's SMT core, is an order of magnitude slower here: ``docs/performance.md``). The SAT
    solver's initial phase ``always_false`` suits the unrollings, where a state has few bits set
    and a step changes few of them: a small gain, measured at 3% on BMC to depth 40 and 13% on
    k-induction with three vCPUs (same document).
    """
    solver = z3.SolverFor("QF_BV", ctx=ctx)
    solver.set("random_seed", SEED)
    solver.set("sat.phase", "always_false")
    return solver


class Unrolling:
    """States and choices of a growing path, their constraints added to ``solver``."""

    def __init__(self, layout: Layout, solver: Any | None = None) -> None:
        self.layout = layout
        self.solver = make_solver(layout.ctx) if solver is None else solver
        self.states: list[State] = [make_state(layout, "0")]
        self.choices: list[Expr] = []
        self.solver.add(initial(self.states[0]))
        self._literals = 0

    @property
    def depth(self) -> int:
        return len(self.choices)

    def extend(self, guard: Expr | None = None) -> Expr:
        """Add one step: ``T(s_k, c_k, s_{k+1})``, asserted under ``guard`` when given (an
        assumption literal), else asserted outright. Returns the new choice variable."""
        k = self.depth
        s, t = self.states[k], make_state(self.layout, str(k + 1))
        c = make_choice(self.layout, str(k))
        relation = encode(s, c, t)
        self.solver.add(relation if guard is None else z3.Implies(guard, relation))
        self.states.append(t)
        self.choices.append(c)
        return c

    def literal(self, formula: Expr) -> Expr:
        """A fresh assumption literal implying ``formula``."""
        self._literals += 1
        lit = z3.Bool(f"assume!{self._literals}", self.layout.ctx)
        self.solver.add(z3.Implies(lit, formula))
        return lit

    def check(self, *assumptions: Expr, timeout_s: float | None = None) -> Any:
        if timeout_s is not None:
            self.solver.set("timeout", max(1, int(timeout_s * 1000)))
        return self.solver.check(*assumptions)
