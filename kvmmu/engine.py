"""The interface that both engines (``impl`` and ``spec``) offer to the conformance
runner: replay a schedule and answer questions about it.

Only data types and a Protocol live here: each engine computes its answers with its own logic,
and the conformance runner (``kvmmu.conformance``) compares the answers with a case's expectation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kvmmu.vocab import Config, Step, Variant

StateValue = int | bool | str | None

# A long run's heartbeat: the engine reports what it has reached ("depth", "k", "states") and
# how far, and the caller draws it (kvmmu.progress). Engines never print.
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class Probes:
    """Extra questions asked during a replay.

    ``state``: after how many executed steps (0 = the initial state) to read which state paths
    (``docs/protocol.md`` section 6.7). ``enabled``: after how many executed steps to ask whether a
    step is enabled.
    """

    state: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    enabled: Mapping[int, tuple[Step, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class StepRecord:
    """What one executed step did. ``index`` is 1-based. ``changes`` is a short human text."""

    index: int
    step: Step
    violations: frozenset[str] = frozenset()
    covers: frozenset[str] = frozenset()
    changes: str = ""


@dataclass(frozen=True)
class Replay:
    """The answer of an engine to a schedule.

    ``steps`` lists the executed steps. ``blocked`` is the 1-based index of the first schedule step
    that was not enabled (the replay stops there), or None. ``first_violation`` maps each violated
    invariant to the index of the first step that violated it. ``state`` and ``enabled`` answer the
    probes; a state path that does not exist at that point (e.g. a root field without a root) is
    answered None; probes after a blocked step are not answered.
    """

    steps: tuple[StepRecord, ...]
    blocked: int | None
    first_violation: Mapping[str, int]
    state: Mapping[int, Mapping[str, StateValue]] = field(default_factory=dict)
    enabled: Mapping[int, Mapping[Step, bool]] = field(default_factory=dict)


class Engine(Protocol):
    """An engine that replays schedules: ``impl.ImplEngine`` or ``spec.SpecEngine``."""

    name: str

    def replay(
        self,
        variant: Variant,
        config: Config,
        schedule: Sequence[Step],
        probes: Probes = Probes(),
    ) -> Replay: ...
