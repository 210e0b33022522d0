"""``SpecEngine``: the Z3 spec as a :class:`kvmmu.engine.Engine`.

A schedule is replayed *symbolically*: the unrolling's step choice at each position is
constrained to the schedule's step, under one assumption literal per position, and Z3 decides
whether the prefix is feasible, i.e. whether every step of it is enabled (the relation is
deterministic, so the prefix fixes every state). The first blocked step is found by bisection
over prefixes (feasibility of a prefix is monotone). Violations, covers, state probes and
enabledness probes are then read from the model of the longest feasible prefix, which is exact
because the states are determined.
"""

from __future__ import annotations

from collections.abc import Sequence

import z3

from kvmmu.engine import Probes, Replay, StateValue, StepRecord
from kvmmu.vocab import Config, Step, Variant
from spec.decode import decode_state, describe_changes
from spec.invariants import BAD, COVER
from spec.state import State
from spec.steps import enabled, is_choice
from spec.unroll import Unrolling
from spec.variants import make_layout

NO_PROBES = Probes()


class SpecEngine:
    """The Z3 specification, replaying schedules symbolically."""

    name = "spec"

    def check_lasso(
        self,
        variant: Variant,
        config: Config,
        prop: str,
        vcpu: str,
        schedule: Sequence[Step],
        loop: int,
        fairness: bool = True,
    ) -> str | None:
        """Why ``schedule`` is not a (fair) lasso refuting ``prop`` for ``vcpu``, looping back to
        the state after ``loop`` steps, or None when it is one (``spec.liveness.check_lasso``)."""
        from spec.liveness import check_lasso

        return check_lasso(variant, config, prop, vcpu, schedule, loop, fairness)

    def replay(
        self,
        variant: Variant,
        config: Config,
        schedule: Sequence[Step],
        probes: Probes = NO_PROBES,
    ) -> Replay:
        layout = make_layout(variant, config, horizon=len(schedule))
        u = Unrolling(layout)
        literals: list[z3.ExprRef] = []
        for step in schedule:
            code = layout.code(step)
            if code is None:
                break  # the variant/configuration has no such step: never enabled
            lit = z3.Bool(f"schedule!{len(literals)}", layout.ctx)
            c = u.extend(guard=lit)
            u.solver.add(z3.Implies(lit, is_choice(layout, c, code)))
            literals.append(lit)
        executed = _longest_feasible_prefix(u, literals)
        blocked = executed + 1 if executed < len(schedule) else None
        if u.check(*literals[:executed]) != z3.sat:  # pragma: no cover - checked by the bisection
            raise RuntimeError("spec replay: the feasible prefix became infeasible")
        model = u.solver.model()

        states = [decode_state(model, u.states[i]) for i in range(executed + 1)]
        records: list[StepRecord] = []
        first: dict[str, int] = {}
        for i in range(executed):
            s, c, t = u.states[i], u.choices[i], u.states[i + 1]
            violations = frozenset(
                name for name, bad in BAD.items() if z3.is_true(model.eval(bad(s, c, t), True))
            )
            covers = frozenset(
                name for name, hit in COVER.items() if z3.is_true(model.eval(hit(s, c, t), True))
            )
            for name in sorted(violations):
                first.setdefault(name, i + 1)
            records.append(
                StepRecord(
                    index=i + 1,
                    step=schedule[i],
                    violations=violations,
                    covers=covers,
                    changes=describe_changes(states[i], states[i + 1]),
                )
            )

        state_answers: dict[int, dict[str, StateValue]] = {}
        for at, paths in probes.state.items():
            if 0 <= at <= executed:
                state_answers[at] = {
                    path: _fault_flag(model, u.states[at], path)
                    if path not in states[at]
                    else states[at][path]
                    for path in paths
                }
        enabled_answers: dict[int, dict[Step, bool]] = {}
        for at, steps in probes.enabled.items():
            if 0 <= at <= executed:
                enabled_answers[at] = {
                    step: bool(z3.is_true(model.eval(enabled(u.states[at], step), True)))
                    for step in steps
                }
        return Replay(
            steps=tuple(records),
            blocked=blocked,
            first_violation=first,
            state=state_answers,
            enabled=enabled_answers,
        )


_FAULT_FLAGS = {"fault.seq_changed": "seq_changed", "fault.pfn_stale": "pfn_stale"}


def _fault_flag(model: z3.ModelRef, s: State, path: str) -> StateValue:
    """The control paths ``vcpuN.fault.seq_changed`` and ``vcpuN.fault.pfn_stale`` (what
    ``no_stale_pfn`` reads, for the trace tables), read from the model; None for any other path
    that section 6.7 does not give."""
    actor, _, rest = path.partition(".")
    v = s.layout.vcpu(actor)
    if v is None or rest not in _FAULT_FLAGS:
        return None
    return bool(z3.is_true(model.eval(s.flag(v, _FAULT_FLAGS[rest]), True)))


def _longest_feasible_prefix(u: Unrolling, literals: list[z3.ExprRef]) -> int:
    """The largest ``n`` such that the first ``n`` schedule steps are all enabled in turn."""

    def feasible(n: int) -> bool:
        answer = u.check(*literals[:n])
        if answer == z3.unknown:  # pragma: no cover - the formulas are tiny
            raise RuntimeError(f"spec replay: z3 answered unknown ({u.solver.reason_unknown()})")
        return bool(answer == z3.sat)

    if feasible(len(literals)):
        return len(literals)
    low, high = 0, len(literals)  # feasible(low), not feasible(high)
    while high - low > 1:
        mid = (low + high) // 2
        if feasible(mid):
            low = mid
        else:
            high = mid
    return low
