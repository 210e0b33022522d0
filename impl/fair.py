"""Liveness by explicit search: fair cycles in the reachable graph (``docs/protocol.md`` §6.11).

The reachable graph of canonical states (``Model.canonical``: dead fault locals reset, a
bisimulation, so a cycle here is a cycle of the model up to those locals) is built breadth-first
with ``Model.successors``. For a property and a vCPU ``v``, the loop of a counterexample may use
only some edges (``fault_progress``: no ``v fault.map``, no zapper or notifier step;
``no_retry_livelock``: only ``v``'s steps, no ``v fault.map``). On the subgraph of those edges the
strongly connected components are computed (Tarjan's algorithm, iterative). A component refutes
the property when it has an inner edge the property needs (``v vcpu.fault``, or a retry of ``v``)
and admits a weakly fair cycle: every actor that is runnable in *all* of its states has an edge
inside it. Under weak fairness that test is exact and needs no refinement of the component (the
Emerson-Lei peeling is needed for strong fairness): a cycle through every edge of a strongly
connected component exists, and it is fair as soon as every actor passes the test; when an actor
fails it, no cycle inside the component is fair.

The lasso returned is a shortest path (breadth-first) to the component closest to the initial
state, then a cycle from that entry through the needed edge and, for each actor runnable in some
state of the component, either one of its edges or a state where it is not runnable.

Why fairness is judged on *runnable* and not on *enabled*, and what runnable means for each actor:
``docs/protocol.md`` §6.11 (lock waits count as runnable; the guest's ``vcpu.fault`` does not).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from impl.model import Model
from impl.params import Params
from impl.state import Machine
from kvmmu.vocab import LIVENESS_PROPERTIES, Config, Step, Variant

Edge = tuple[int, Step, int, bool]  # (source, step, target, the step is a retry of its vCPU)


@dataclass(frozen=True)
class LassoResult:
    """The answer of :func:`find_lasso` for one property.

    ``verdict``: ``violated`` (a fair lasso, ``prefix`` then ``loop`` repeated forever, refuting
    the property for ``vcpu``) or ``holds`` (no fair violating cycle in the whole reachable
    graph: a proof, the graph being finite). ``states``/``edges``: the size of the reachable
    graph. ``fair``: whether fairness was required. ``covered``: some reachable state has the
    environment finished (no zapper, not the notifier runnable) and a ``vcpu.fault`` enabled,
    i.e. the property's premise can be met (else a ``holds`` is vacuous).
    """

    prop: str
    verdict: str
    vcpu: str = ""
    prefix: tuple[Step, ...] = ()
    loop: tuple[Step, ...] = ()
    states: int = 0
    edges: int = 0
    seconds: float = 0.0
    fair: bool = True
    covered: bool = False

    @property
    def trace(self) -> tuple[Step, ...]:
        return self.prefix + self.loop

    @property
    def loop_start(self) -> int:
        """The number of prefix steps: the state after them is the one the loop returns to."""
        return len(self.prefix)


def runnable(p: Params, m: Machine, actor: str) -> bool:
    """Whether the scheduler would run ``actor`` in ``m`` (§6.11): waiting for a lock counts;
    a vCPU in guest mode (its guest decides when to fault) or crashed does not; a zapper or the
    notifier whose bounded work is done does not."""
    kind, i = p.actors[actor]
    if kind == "vcpu":
        return m.vcpus[i].mode in ("outside", "fault")
    if kind == "zapper":
        z = m.zappers[i]
        done = p.config.max_zaps is not None and z.zaps >= p.config.max_zaps
        return not (p.zap_program[z.pc] == "zap.lock" and done)
    n = m.notifier
    assert n is not None
    bound = p.config.max_invalidations
    return n.started or bound is None or n.invalidations < bound


def is_environment(actor: str) -> bool:
    return not actor.startswith("vcpu")


def is_retry(step: Step, after: Machine, index: int) -> bool:
    """A ``fault.check`` that found the fault stale (its next step is the unlock, the map
    skipped) or a ``fault.check_request`` that ended the fault (§6.11)."""
    v = after.vcpus[index]
    if step.name == "fault.check":
        return v.mode == "fault" and v.pc == "fault.unlock" and v.stale
    return step.name == "fault.check_request" and v.mode == "outside"


@dataclass
class Graph:
    """The reachable graph: canonical states by id, edges out of each, breadth-first parents."""

    states: list[Machine]
    out: list[list[Edge]]
    parent: list[tuple[int, Step] | None]

    def path_to(self, node: int) -> tuple[Step, ...]:
        steps: list[Step] = []
        link = self.parent[node]
        while link is not None:
            node, step = link
            steps.append(step)
            link = self.parent[node]
        return tuple(reversed(steps))


def reachable_graph(model: Model) -> Graph:
    """Every state reachable from the initial one, breadth-first (no symmetry reduction: fairness
    names actors, and a permutation of vCPUs would rename them)."""
    init = model.canonical(model.initial())
    ids: dict[Machine, int] = {init: 0}
    g = Graph([init], [[]], [None])
    todo = deque([0])
    while todo:
        n = todo.popleft()
        for step, raw in model.successors(g.states[n]):
            after = model.canonical(raw)
            target = ids.get(after)
            if target is None:
                target = len(g.states)
                ids[after] = target
                g.states.append(after)
                g.out.append([])
                g.parent.append((n, step))
                todo.append(target)
            retry = False
            if step.actor.startswith("vcpu") and step.name in (
                "fault.check",
                "fault.check_request",
            ):
                retry = is_retry(step, raw, model.params.actors[step.actor][1])
            g.out[n].append((n, step, target, retry))
    return g


def strongly_connected_components(
    count: int, succ: Callable[[int], Sequence[int]]
) -> list[list[int]]:
    """Tarjan's algorithm without recursion: the components of the graph on ``0 .. count-1``."""
    index = [-1] * count
    low = [0] * count
    on_stack = [False] * count
    stack: list[int] = []
    components: list[list[int]] = []
    counter = 0
    for root in range(count):
        if index[root] != -1:
            continue
        work: list[tuple[int, int]] = [(root, 0)]
        while work:
            node, pos = work[-1]
            if pos == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack[node] = True
            nexts = succ(node)
            if pos < len(nexts):
                work[-1] = (node, pos + 1)
                w = nexts[pos]
                if index[w] == -1:
                    work.append((w, 0))
                elif on_stack[w]:
                    low[node] = min(low[node], index[w])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[int] = []
                while True:
                    w = stack.pop()
                    on_stack[w] = False
                    component.append(w)
                    if w == node:
                        break
                components.append(component)
    return components


def _allowed(prop: str, vcpu: str) -> Callable[[Edge], bool]:
    """The edges a violating loop of ``prop`` for ``vcpu`` may take (§6.11)."""
    no_map = Step(vcpu, "fault.map")
    if prop == "fault_progress":
        return lambda e: e[1] != no_map and not is_environment(e[1].actor)
    return lambda e: e[1].actor == vcpu and e[1] != no_map


def _needed(prop: str, vcpu: str) -> Callable[[Edge], bool]:
    """The edges a violating loop must take at least once."""
    if prop == "fault_progress":
        fault = Step(vcpu, "vcpu.fault")
        return lambda e: e[1] == fault
    return lambda e: e[1].actor == vcpu and e[3]


def _bfs_inside(
    g: Graph, inner: dict[int, list[Edge]], start: int, goal: Callable[[int], bool]
) -> list[Edge] | None:
    """A shortest path of inner edges from ``start`` to a node satisfying ``goal``."""
    if goal(start):
        return []
    back: dict[int, Edge] = {}
    todo = deque([start])
    seen = {start}
    while todo:
        n = todo.popleft()
        for e in inner[n]:
            if e[2] in seen:
                continue
            seen.add(e[2])
            back[e[2]] = e
            if goal(e[2]):
                path = [e]
                while path[-1][0] != start:
                    path.append(back[path[-1][0]])
                return list(reversed(path))
            todo.append(e[2])
    return None


def _cycle(
    g: Graph,
    inner: dict[int, list[Edge]],
    entry: int,
    needed: list[Edge],
    obligations: list[tuple[str, set[int], list[Edge]]],
) -> list[Edge]:
    """A cycle from ``entry`` through one of ``needed`` and, for each obligation (an actor, the
    nodes where it is not runnable, its edges), a node or an edge of it (the component is
    strongly connected, so every target is reachable)."""
    path: list[Edge] = []
    here = entry

    def go(goal: Callable[[int], bool]) -> None:
        nonlocal here
        hop = _bfs_inside(g, inner, here, goal)
        assert hop is not None
        path.extend(hop)
        if hop:
            here = hop[-1][2]

    def through_edge(edges: list[Edge]) -> None:
        nonlocal here
        sources = {e[0] for e in edges}
        go(lambda n: n in sources)
        edge = next(e for e in edges if e[0] == here)
        path.append(edge)
        here = edge[2]

    through_edge(needed)
    for actor, idle, edges in obligations:
        visited = {entry} | {e[2] for e in path}
        if visited & idle or any(e[1].actor == actor for e in path):
            continue  # already met on the way
        if idle:
            go(idle.__contains__)
        else:
            through_edge(edges)
    go(lambda n: n == entry)
    return path


def find_lasso(
    variant: Variant,
    config: Config,
    prop: str,
    fairness: bool = True,
    graph: Graph | None = None,
) -> LassoResult:
    """Search the whole reachable graph for a (fair) lasso refuting ``prop`` for some vCPU;
    the one with the shortest prefix, then the shortest loop, over the vCPUs."""
    if prop not in LIVENESS_PROPERTIES:
        raise ValueError(f"unknown property {prop!r} (known: {', '.join(LIVENESS_PROPERTIES)})")
    if config.zappers and variant.knobs.get("generation") == "counter" and config.max_zaps is None:
        raise ValueError("generation: counter with max_zaps null has infinitely many states")
    start = time.perf_counter()
    model = Model.of(variant, config)
    p = model.params
    g = reachable_graph(model) if graph is None else graph
    n_edges = sum(len(out) for out in g.out)
    depth = [0] * len(g.states)
    for n in range(1, len(g.states)):
        link = g.parent[n]
        assert link is not None
        depth[n] = depth[link[0]] + 1
    env = [a for a in p.actor_names if is_environment(a)]
    covered = any(
        not any(runnable(p, m, a) for a in env) and any(v.mode == "guest" for v in m.vcpus)
        for m in g.states
    )
    best: LassoResult | None = None
    for vcpu in p.actor_names:
        if is_environment(vcpu):
            continue
        found = _violation(g, p, prop, vcpu, fairness, depth)
        if found is None:
            continue
        prefix, loop = found
        if best is None or (len(prefix), len(loop)) < (len(best.prefix), len(best.loop)):
            best = LassoResult(prop, "violated", vcpu, prefix, loop)
    seconds = time.perf_counter() - start
    if best is None:
        return LassoResult(
            prop,
            "holds",
            states=len(g.states),
            edges=n_edges,
            seconds=seconds,
            fair=fairness,
            covered=covered,
        )
    return LassoResult(
        prop,
        "violated",
        best.vcpu,
        best.prefix,
        best.loop,
        len(g.states),
        n_edges,
        seconds,
        fairness,
        covered,
    )


def _violation(
    g: Graph, p: Params, prop: str, vcpu: str, fairness: bool, depth: list[int]
) -> tuple[tuple[Step, ...], tuple[Step, ...]] | None:
    allowed, needed = _allowed(prop, vcpu), _needed(prop, vcpu)
    sub = [[e for e in out if allowed(e)] for out in g.out]
    components = strongly_connected_components(len(g.states), lambda n: [e[2] for e in sub[n]])
    best: tuple[tuple[Step, ...], tuple[Step, ...]] | None = None
    for component in components:
        members = set(component)
        inner = {n: [e for e in sub[n] if e[2] in members] for n in component}
        edges = [e for n in component for e in inner[n]]
        need = [e for e in edges if needed(e)]
        if not need:
            continue
        obligations: list[tuple[str, set[int], list[Edge]]] = []
        fair = True
        for actor in p.actor_names if fairness else ():
            idle = {n for n in component if not runnable(p, g.states[n], actor)}
            steps = [e for e in edges if e[1].actor == actor]
            if not idle and not steps:
                fair = False  # runnable throughout, never steps: no fair cycle in here
                break
            obligations.append((actor, idle, steps))
        if not fair:
            continue
        entry = min(component, key=lambda n: (depth[n], n))
        loop = tuple(e[1] for e in _cycle(g, inner, entry, need, obligations))
        prefix = g.path_to(entry)
        if best is None or (len(prefix), len(loop)) < (len(best[0]), len(best[1])):
            best = (prefix, loop)
    return best


def check_lasso(
    variant: Variant,
    config: Config,
    prop: str,
    vcpu: str,
    steps: Sequence[Step],
    loop: int,
    fairness: bool = True,
) -> str | None:
    """Why ``steps`` with the loop starting after ``loop`` steps is *not* a (fair) lasso refuting
    ``prop`` for ``vcpu``, or None when it is one: every step enabled in turn, the state after
    all of them (canonical) equal to the state after ``loop`` of them, and the loop fair and
    violating (§6.11)."""
    model = Model.of(variant, config)
    p = model.params
    if not 0 <= loop < len(steps):
        return f"loop start {loop} is not inside the trace of {len(steps)} steps"
    if vcpu not in p.actors or is_environment(vcpu):
        return f"no vCPU {vcpu!r} in this configuration"
    m = model.initial()
    states = [model.canonical(m)]
    edges: list[Edge] = []
    for n, step in enumerate(steps, 1):
        after = model.run(m, step)
        if after is None:
            return f"step {n} ({step}) is not enabled"
        retry = step.actor == vcpu and step.name in ("fault.check", "fault.check_request")
        retry = retry and is_retry(step, after, p.actors[vcpu][1])
        edges.append((n - 1, step, n, retry))
        m = after
        states.append(model.canonical(m))
    if states[-1] != states[loop]:
        return f"the state after step {len(steps)} is not the state after step {loop}"
    cycle = edges[loop:]
    allowed, needed = _allowed(prop, vcpu), _needed(prop, vcpu)
    bad = [e for e in cycle if not allowed(e)]
    if bad:
        return f"the loop takes {bad[0][1]}, which a violation of {prop} excludes"
    if not any(needed(e) for e in cycle):
        what = "vcpu.fault" if prop == "fault_progress" else "retry"
        return f"the loop has no {what} of {vcpu}"
    if fairness:
        for actor in p.actor_names:
            idle = any(not runnable(p, states[e[0]], actor) for e in cycle)
            if not idle and not any(e[1].actor == actor for e in cycle):
                return f"unfair loop: {actor} is runnable throughout and never steps"
    return None
