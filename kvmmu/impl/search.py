"""Schedulers: the exhaustive breadth-first search and the seeded random walk.

(The third scheduler, the explicit replay of a given schedule, is ``ImplEngine.replay``.)
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from dataclasses import dataclass

from kvmmu.impl.model import Model
from kvmmu.impl.state import Machine
from kvmmu.vocab import INVARIANTS, Config, Step, Variant

Trace = tuple[Step, ...]


@dataclass(frozen=True)
class SearchResult:
    """The answer of the exhaustive search.

    ``violations``: for each requested invariant that some interleaving violates, a shortest
    violating trace (the first one in breadth-first order). ``states``: distinct (canonical)
    states reached. ``depth``: the largest number of steps to a state that the search
    reached. ``covers``: the cover targets some explored step reaches.
    """

    violations: dict[str, Trace]
    states: int
    depth: int
    seconds: float
    covers: frozenset[str]


def _check_invariants(invariants: Iterable[str]) -> tuple[str, ...]:
    wanted = tuple(invariants)
    unknown = [name for name in wanted if name not in INVARIANTS]
    if unknown:
        known = ", ".join(INVARIANTS)
        raise ValueError(f"unknown invariant(s) {', '.join(unknown)} (known: {known})")
    return wanted


def explore(
    variant: Variant,
    config: Config,
    invariants: Iterable[str] = INVARIANTS,
    max_depth: int | None = None,
) -> SearchResult:
    """Breadth-first search over all interleavings of ``config``'s actors under ``variant``.

    Every transition out of every reached state is judged, so the first violation of an
    invariant found in breadth-first order is a shortest one; with ``max_depth = k`` exactly the
    traces of at most ``k`` steps are judged, which is what bounded model checking to depth k
    decides. Successors are explored by actor order of ``Config.actors()``, then step name, so
    the traces returned are deterministic. The search goes on after a violation (a violated
    step invariant does not stop the machine) until every requested invariant is violated or
    the state space (up to ``max_depth``) is exhausted; then ``states``, ``depth`` and
    ``covers`` describe the part explored (whole breadth-first levels). With no invariants
    requested the whole space is explored.
    """
    wanted = _check_invariants(invariants)
    if variant.knobs.get("generation") == "counter" and config.max_zaps is None and config.zappers:
        raise ValueError(
            "generation: counter with max_zaps null has infinitely many states; "
            "bound max_zaps (or use generation: bit) for the exhaustive search"
        )
    if max_depth is not None and max_depth < 0:
        raise ValueError("max_depth must be >= 0 or None")
    model = Model.of(variant, config)
    start = time.perf_counter()
    # state -> (predecessor, step); the trace to a state is rebuilt by walking back
    parent: dict[Machine, tuple[Machine, Step] | None] = {}
    init = model.canonical(model.initial())
    parent[init] = None
    found: dict[str, Trace] = {}
    covers: set[str] = set()
    frontier = [init]
    depth = 0

    def trace_to(m: Machine, last: Step) -> Trace:
        steps = [last]
        link = parent[m]
        while link is not None:
            m, step = link
            steps.append(step)
            link = parent[m]
        return tuple(reversed(steps))

    while frontier and (max_depth is None or depth < max_depth):
        if wanted and len(found) == len(wanted):
            break  # every requested invariant has its shortest trace (the level is complete)
        nxt: list[Machine] = []
        for m in frontier:
            for step, after_raw in model.successors(m):
                after = model.canonical(after_raw)
                covers |= model.covers(m, step, after)
                bad = model.step_violations(m, step, after)
                is_new = after not in parent
                if is_new:
                    parent[after] = (m, step)
                    nxt.append(after)
                    # a state invariant needs judging only the first time the state is reached:
                    # breadth-first, that is already the shortest way to it
                    bad |= model.state_violations(after)
                for name in bad:
                    if name in wanted and name not in found:
                        found[name] = trace_to(m, step)
        if nxt:
            depth += 1
        frontier = nxt
    return SearchResult(
        violations={name: found[name] for name in wanted if name in found},
        states=len(parent),
        depth=depth,
        seconds=time.perf_counter() - start,
        covers=frozenset(covers),
    )


def random_trace(variant: Variant, config: Config, seed: int, steps: int) -> Trace:
    """A seeded random walk of at most ``steps`` steps: at each state one of the enabled steps,
    chosen uniformly with ``random.Random(seed)``; it ends early when no step is enabled."""
    if steps < 0:
        raise ValueError("steps must be >= 0")
    model = Model.of(variant, config)
    rng = random.Random(seed)
    m = model.initial()
    trace: list[Step] = []
    for _ in range(steps):
        options = model.successors(m)
        if not options:
            break
        step, m = options[rng.randrange(len(options))]
        trace.append(step)
    return tuple(trace)


def enabled_steps(
    variant: Variant, config: Config, schedule: Iterable[Step] = ()
) -> tuple[Step, ...]:
    """The steps enabled after running ``schedule`` from the initial state (ValueError if a step
    of it is not enabled), in exploration order."""
    model = Model.of(variant, config)
    m = model.initial()
    for n, step in enumerate(schedule, 1):
        after = model.run(m, step)
        if after is None:
            raise ValueError(f"step {n} ({step}) is not enabled")
        m = after
    return model.enabled(m)
