"""Schedulers: the exhaustive breadth-first search and the seeded random walk.

(The third scheduler, the explicit replay of a given schedule, is ``ImplEngine.replay``.)
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from dataclasses import dataclass

from impl.model import Model
from impl.state import Machine
from kvmmu.engine import Progress
from kvmmu.vocab import INVARIANTS, Config, Step, Variant

Trace = tuple[Step, ...]


@dataclass(frozen=True)
class SearchResult:
    """The answer of the exhaustive search.

    ``violations``: for each requested invariant that some interleaving violates, a shortest
    violating trace (the first one in breadth-first order). ``states``: distinct (canonical)
    states reached, or classes of them under vCPU symmetry (``explore(symmetry=True)``).
    ``depth``: the largest number of steps to a state that the search reached. ``covers``: the
    cover targets some explored step reaches.
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
    symmetry: bool = True,
    progress: Progress | None = None,
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

    ``symmetry``: visit one state per class of states that differ only by a permutation of
    same-kind vCPUs (``Model.symmetric``). The visited set is keyed on the class, but the state
    expanded is the concrete one first reached, with its concrete predecessor and step, so every
    trace returned names the vCPUs that really take its steps; shortest lengths are unchanged,
    as a permutation of a path is a path of the same length. ``states`` then counts classes.
    ``progress`` hears the depth and the states reached after each level.
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
    key_of = model.symmetric if symmetry else _identity
    start = time.perf_counter()
    # class key -> (the key of the predecessor expanded, step); the trace to a state is rebuilt
    # by walking back. Keys are states (their class representatives with ``symmetry``); the
    # frontier holds the concrete state each key was first reached as, with the key.
    parent: dict[Machine, tuple[Machine, Step] | None] = {}
    init = model.canonical(model.initial())
    init_key = key_of(init)
    parent[init_key] = None
    found: dict[str, Trace] = {}
    covers: set[str] = set()
    frontier: list[tuple[Machine, Machine]] = [(init_key, init)]
    depth = 0

    def trace_to(key: Machine, last: Step) -> Trace:
        steps = [last]
        link = parent[key]
        while link is not None:
            key, step = link
            steps.append(step)
            link = parent[key]
        return tuple(reversed(steps))

    while frontier and (max_depth is None or depth < max_depth):
        if wanted and len(found) == len(wanted):
            break  # every requested invariant has its shortest trace (the level is complete)
        nxt: list[tuple[Machine, Machine]] = []
        for m_key, m in frontier:
            for step, after_raw in model.successors(m):
                after = model.canonical(after_raw)
                covers |= model.covers(m, step, after)
                bad = model.step_violations(m, step, after)
                key = key_of(after)
                if key not in parent:
                    parent[key] = (m_key, step)
                    nxt.append((key, after))
                    # a state invariant needs judging only the first time the state is reached:
                    # breadth-first, that is already the shortest way to it (to any state of
                    # its class, which all violate the same state invariants)
                    bad |= model.state_violations(after)
                for name in bad:
                    if name in wanted and name not in found:
                        found[name] = trace_to(m_key, step)
        if nxt:
            depth += 1
        frontier = nxt
        if progress is not None:
            progress("depth", depth)
            progress("states", len(parent))
    return SearchResult(
        violations={name: found[name] for name in wanted if name in found},
        states=len(parent),
        depth=depth,
        seconds=time.perf_counter() - start,
        covers=frozenset(covers),
    )


def _identity(m: Machine) -> Machine:
    return m


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
