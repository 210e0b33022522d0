"""K12 as a count: root reloads that ``KVM_REQ_MMU_RELOAD`` forces and the targeted request avoids.

Before v5.18, every request made the vCPU unload *all* its roots (``kvm_mmu_unload()``, mmu.c),
even a root that was still valid; 527d5cd7eece (v5.18, with f6d0a2521ce1 for PCIDE) replaced it by
``KVM_REQ_MMU_FREE_OBSOLETE_ROOTS`` and ``kvm_mmu_free_obsolete_roots()``, which frees only the
roots ``is_obsolete_root()`` names (kernel-facts.md 8.3, K12: a performance fix, not a safety
one). The two are compared on the executable model (``impl``), one knob apart: v5.16 with
``request: reload`` and with ``request: free_obsolete``, under the same configuration.

A *wasted reload* is a ``vcpu.unload`` that drops a root which is still valid (the model's ghost
``obsolete`` is false): the vCPU must then ``vcpu.load`` a new root and refault what it had.
:func:`count` counts, over the reachable state graph (``impl.fair.reachable_graph``):

- the reachable states and the ``vcpu.unload`` edges, and how many of those drop a valid root;
- over *every* schedule of up to ``depth`` steps from the initial state (all interleavings,
  counted by dynamic programming on the graph, never enumerated), the unloads and the wasted
  reloads they contain, and how many schedules contain at least one.

A special root (no shadow page) counts as wasted when dropped while valid under either request:
``is_obsolete_root()`` treats a root without a shadow page as obsolete, a false positive the
kernel accepts (K2's request test rests on it).
"""

from __future__ import annotations

from dataclasses import dataclass

from impl.fair import Graph, reachable_graph
from impl.model import Model
from impl.state import Machine
from kvmmu.vocab import Config, Step, make_variant

REQUESTS = ("reload", "free_obsolete")
BASE = "v5.16"  # the request is the only knob that differs between the two runs


@dataclass(frozen=True)
class Count:
    """The figures of one configuration under one request."""

    config: str
    request: str
    states: int
    unload_edges: int
    wasted_edges: int  # unload edges that drop a still-valid root
    depth: int
    schedules: int  # schedules of up to ``depth`` steps (shorter only where they get stuck)
    unloads: int  # vcpu.unload steps summed over all those schedules
    wasted: int  # of them, the ones dropping a still-valid root
    schedules_wasting: int  # schedules with at least one wasted reload


def wasted_reload(model: Model, before: Machine, step: Step, after: Machine) -> bool:
    """Whether ``step`` is a ``vcpu.unload`` that drops a root still valid (not obsolete): what
    ``kvm_mmu_unload()`` (mmu.c, up to v5.17) does to every root it is asked about, and
    ``kvm_mmu_free_obsolete_roots()`` (527d5cd7eece, v5.18) only to a root without a shadow
    page, which ``is_obsolete_root()`` cannot tell valid."""
    if step.name != "vcpu.unload":
        return False
    i = model.params.actors[step.actor][1]
    root = before.vcpus[i].root
    return root is not None and not root.obsolete and after.vcpus[i].root is None


def count(config: Config, request: str, depth: int) -> Count:
    """The figures of ``config`` under ``request`` (v5.16 otherwise), schedules up to ``depth``."""
    model = Model.of(make_variant(BASE, {"request": request}), config)
    graph = reachable_graph(model)
    wasted_at = _wasted_edges(model, graph)
    unload_edges = sum(1 for edges in graph.out for _, step, _, _ in edges if _unload(step))
    # per state, over the schedules of up to d more steps: how many, the unloads and the wasted
    # reloads summed over them, and how many waste none (exact integers: the counts grow fast)
    size = len(graph.states)
    paths, unloads, wasted, clean = [1] * size, [0] * size, [0] * size, [1] * size
    for _ in range(depth):
        step_paths, step_unloads, step_wasted, step_clean = [], [], [], []
        for n in range(size):
            p = u = w = c = 0
            for index, (_, step, target, _) in enumerate(graph.out[n]):
                waste = (n, index) in wasted_at
                p += paths[target]
                u += unloads[target] + (paths[target] if _unload(step) else 0)
                w += wasted[target] + (paths[target] if waste else 0)
                c += 0 if waste else clean[target]
            if not graph.out[n]:  # a stuck state ends its one schedule here
                p, c = 1, 1
            step_paths.append(p)
            step_unloads.append(u)
            step_wasted.append(w)
            step_clean.append(c)
        paths, unloads, wasted, clean = step_paths, step_unloads, step_wasted, step_clean
    return Count(
        config=config_label(config),
        request=request,
        states=size,
        unload_edges=unload_edges,
        wasted_edges=len(wasted_at),
        depth=depth,
        schedules=paths[0],
        unloads=unloads[0],
        wasted=wasted[0],
        schedules_wasting=paths[0] - clean[0],
    )


def _unload(step: Step) -> bool:
    return step.name == "vcpu.unload"


def _wasted_edges(model: Model, graph: Graph) -> frozenset[tuple[int, int]]:
    """(state, edge index) of every unload edge of ``graph`` that drops a still-valid root."""
    return frozenset(
        (n, index)
        for n, edges in enumerate(graph.out)
        for index, (_, step, target, _) in enumerate(edges)
        if wasted_reload(model, graph.states[n], step, graph.states[target])
    )


def config_label(config: Config) -> str:
    return f"vcpus {','.join(config.vcpus)}, zappers {config.zappers}, max_zaps {config.max_zaps}"
