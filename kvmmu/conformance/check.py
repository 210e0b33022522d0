"""Compare an engine's replay of a case with the case's expectation.

No protocol logic lives here: the engine computes everything (which steps run, which invariants
break, the state); this module only asks the questions the case implies and compares answers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from kvmmu.conformance.case import Case
from kvmmu.engine import Engine, Probes, Replay, StateValue
from kvmmu.vocab import INVARIANTS, Config, Step, Variant


@runtime_checkable
class LassoEngine(Protocol):
    """An engine that can judge a lasso (``expect: lasso``): both of kvmmu's engines can."""

    def check_lasso(
        self,
        variant: Variant,
        config: Config,
        prop: str,
        vcpu: str,
        schedule: Sequence[Step],
        loop: int,
        fairness: bool,
    ) -> str | None: ...


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case on one engine. ``mismatches`` lists readable differences;
    ``error`` is set when the case could not be loaded or the engine raised."""

    case_id: str
    path: Path
    engine: str
    mismatches: tuple[str, ...] = ()
    error: str | None = None

    @property
    def passed(self) -> bool:
        return not self.mismatches and self.error is None


def probes_for(case: Case) -> Probes:
    """The questions a case asks besides the violations: state paths and enabledness."""
    state: defaultdict[int, list[str]] = defaultdict(list)
    for check in case.expect.state:
        state[check.after].append(check.path)
    enabled: defaultdict[int, list[Step]] = defaultdict(list)
    for probe in case.expect.enabled:
        if probe.step not in enabled[probe.after]:
            enabled[probe.after].append(probe.step)
    return Probes(
        state={after: tuple(paths) for after, paths in sorted(state.items())},
        enabled={after: tuple(steps) for after, steps in sorted(enabled.items())},
    )


def check_case(case: Case, engine: Engine) -> CaseResult:
    """Replay ``case`` on ``engine`` and compare. Exceptions of the engine propagate."""
    replay = engine.replay(case.variant, case.config, case.schedule, probes_for(case))
    found = compare(case, replay, engine.name)
    lasso = case.expect.lasso
    if lasso is not None:
        if not isinstance(engine, LassoEngine):
            found.append(f"lasso: engine {engine.name} cannot check lassos")
        else:
            why = engine.check_lasso(
                case.variant,
                case.config,
                lasso.prop,
                lasso.vcpu,
                case.schedule,
                lasso.loop,
                lasso.fairness,
            )
            if why is not None:
                found.append(f"lasso [{engine.name}]: not a lasso refuting {lasso.prop}: {why}")
    return CaseResult(case.id, case.path, engine.name, tuple(found))


def compare(case: Case, replay: Replay, engine: str) -> list[str]:
    """Every difference between ``case``'s expectation and ``replay``, as readable lines."""
    return [
        *_blocked(case, replay, engine),
        *_violations(case, replay, engine),
        *_enabled(case, replay, engine),
        *_state(case, replay, engine),
        *_covers(case, replay, engine),
    ]


def _step(case: Case, index: int) -> str:
    """``step 13 (vcpu0 fault.map)``: the index and what the schedule says there."""
    if 1 <= index <= len(case.schedule):
        return f"step {index} ({case.schedule[index - 1]})"
    return f"step {index} (not in the schedule)"


def _stopped(replay: Replay) -> int | None:
    """After how many steps the replay stopped early, if it did."""
    return None if replay.blocked is None else replay.blocked - 1


def _blocked(case: Case, replay: Replay, engine: str) -> list[str]:
    want, got = case.expect.blocked, replay.blocked
    problems = []
    if want != got:
        if want is None:
            problems.append(
                f"blocked: expected every step enabled, {engine} says {_step(case, got or 0)} "
                "is not enabled (the replay stopped there)"
            )
        elif got is None:
            problems.append(f"blocked: expected {_step(case, want)} not enabled, {engine} ran it")
        else:
            problems.append(
                f"blocked: expected {_step(case, want)} not enabled, "
                f"{engine} says {_step(case, got)}"
            )
    ran = len(replay.steps)
    should_run = len(case.schedule) if got is None else got - 1
    if ran != should_run:  # an engine inconsistency, reported so it is not mistaken for a pass
        problems.append(f"steps: {engine} reports {ran} executed steps, expected {should_run}")
    return problems


def _violations(case: Case, replay: Replay, engine: str) -> list[str]:
    problems = []
    for name in INVARIANTS:
        want = case.expect.violated.get(name)
        got = replay.first_violation.get(name)
        if want == got:
            continue
        want_text = "never" if want is None else f"first violation at {_step(case, want)}"
        got_text = "never" if got is None else _step(case, got)
        problems.append(f"{name}: expected {want_text}, {engine} says {got_text}")
    for name in sorted(set(replay.first_violation) - set(INVARIANTS)):
        problems.append(f"{name}: {engine} reports a violation of an unknown invariant")
    return problems


def _enabled(case: Case, replay: Replay, engine: str) -> list[str]:
    stopped = _stopped(replay)
    problems = []
    for probe in case.expect.enabled:
        if stopped is not None and probe.after > stopped:
            continue  # the blocked mismatch already says the replay stopped early
        answers = replay.enabled.get(probe.after, {})
        where = f"after {probe.after} steps"
        if probe.step not in answers:
            problems.append(f"{where}: {engine} gave no answer whether '{probe.step}' is enabled")
            continue
        got = answers[probe.step]
        if got != probe.enabled:
            want_text = "enabled" if probe.enabled else "not enabled"
            got_text = "enabled" if got else "not enabled"
            problems.append(
                f"{where}: expected '{probe.step}' {want_text}, {engine} says {got_text}"
            )
    return problems


def _same(a: StateValue, b: StateValue) -> bool:
    # Strict: True must not pass for 1, nor 0 for False.
    return type(a) is type(b) and a == b


def _show(value: StateValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _state(case: Case, replay: Replay, engine: str) -> list[str]:
    stopped = _stopped(replay)
    problems = []
    for check in case.expect.state:
        if stopped is not None and check.after > stopped:
            continue
        answers = replay.state.get(check.after, {})
        where = f"after {check.after} steps: {check.path}"
        if check.path not in answers:
            problems.append(f"{where}: {engine} gave no answer")
            continue
        got = answers[check.path]
        if not _same(check.value, got):
            problems.append(f"{where}: expected {_show(check.value)}, {engine} says {_show(got)}")
    return problems


def _covers(case: Case, replay: Replay, engine: str) -> list[str]:
    reached = set().union(*(record.covers for record in replay.steps))
    return [
        f"covers: expected {target} to be reached, {engine} never reached it"
        for target in case.expect.covers
        if target not in reached
    ]
