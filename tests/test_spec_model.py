"""The structure of the Z3 transition system: determinism, explicit frames, the zapper program,
and sanity lemmas proved on the unrolling (mutual exclusion of mmu_lock, invalid implies
obsolete)."""

from __future__ import annotations

import pytest
import z3

from kvmmu.vocab import Config, Knobs, make_variant
from spec.state import State, make_state
from spec.steps import encode, is_choice, make_choice, transitions
from spec.unroll import Unrolling, make_solver
from spec.variants import Layout, make_layout, zapper_program

RICH = Config(vcpus=("special", "sp", "tdp"), zappers=2, notifier=True)
VARIANTS = [
    make_variant("v5.16"),
    make_variant("v5.16-rc4"),
    make_variant(
        "v5.18",
        {
            "stale_check.reload_request": "check",
            "stale_check.request_before_lock": True,
            "zap.yield": True,
            "zap.unlock_between_gen_and_request": True,
            "zap.respect_root_count": False,
            "generation": "counter",
        },
    ),
]


def _layout(index: int) -> Layout:
    return make_layout(VARIANTS[index], RICH, horizon=8)


@pytest.mark.parametrize("index", range(len(VARIANTS)))
def test_transition_relation_is_deterministic(index: int) -> None:
    layout = _layout(index)
    s, t1, t2 = (make_state(layout, n) for n in ("s", "t1", "t2"))
    c = make_choice(layout, "c")
    solver = make_solver(layout.ctx)
    solver.add(encode(s, c, t1), encode(s, c, t2))
    solver.add(z3.Or([t1[name] != t2[name] for name in t1]))
    assert solver.check() == z3.unsat


def _allowed(layout: Layout, actor: str, name: str) -> bool:
    """Which variables a step of ``actor`` may change (the explicit frame, section 6.3)."""
    if name.startswith(actor + "."):
        return True
    if actor.startswith("zapper"):
        # new_gen: the generation, ghost obsolete, TDP invalid; request: request bits and the
        # kick; zap_obsolete: spte, invalid, freed
        return name == "kvm.mmu_valid_gen" or (
            name.endswith(
                (".request", ".pc", ".root.obsolete", ".root.invalid", ".root.spte", ".root.freed")
            )
            and name.startswith("vcpu")
        )
    if actor == "notifier":
        return name.startswith("vcpu") and name.endswith(
            (".root.spte", ".pfn_stale", ".seq_changed")
        )
    return False


@pytest.mark.parametrize("index", range(len(VARIANTS)))
def test_every_step_updates_only_what_it_owns(index: int) -> None:
    layout = _layout(index)
    s = make_state(layout, "s")
    for tr in transitions(s):
        for name in tr.updates:
            assert _allowed(layout, tr.step.actor, name), f"{tr.step} updates {name}"


def test_every_step_keeps_what_it_does_not_own_semantically() -> None:
    layout = _layout(2)
    s, t = make_state(layout, "s"), make_state(layout, "t")
    c = make_choice(layout, "c")
    solver = make_solver(layout.ctx)
    solver.add(encode(s, c, t))
    for code, step in enumerate(layout.choices):
        others = [t[n] != s[n] for n in s if not _allowed(layout, step.actor, n)]
        assert solver.check(is_choice(layout, c, code), z3.Or(others)) == z3.unsat, step


def test_zapper_programs() -> None:
    def names(**overrides: object) -> list[list[str]]:
        knobs = Knobs.of(make_variant("v5.16", overrides))  # type: ignore[arg-type]
        return [sorted(p) for p in zapper_program(knobs).positions]

    assert names() == [
        ["zap.lock"],
        ["zap.new_gen"],
        ["zap.request"],
        ["zap.zap_obsolete"],
        ["zap.unlock"],
    ]
    assert names(**{"zap.request_before_gen": True})[1:3] == [["zap.request"], ["zap.new_gen"]]
    assert names(**{"zap.unlock_between_gen_and_request": True})[1:5] == [
        ["zap.new_gen"],
        ["zap.unlock_mid"],
        ["zap.relock"],
        ["zap.request"],
    ]
    assert names(**{"zap.yield": True})[3:] == [
        ["zap.yield", "zap.zap_obsolete"],
        ["zap.relock"],
        ["zap.zap_obsolete"],
        ["zap.unlock"],
    ]
    knobs = Knobs.of(make_variant("v5.16", {"zap.unlock_between_gen_and_request": True}))
    program = zapper_program(knobs)
    assert program.window == frozenset({2, 3, 4})  # after new_gen, up to the request
    assert 3 not in program.holds_lock  # between unlock_mid and relock
    knobs = Knobs.of(make_variant("v5.16", {"zap.request_before_gen": True}))
    assert zapper_program(knobs).window == frozenset()


def _lemma_holds(layout: Layout, depth: int, lemma: object) -> None:
    u = Unrolling(layout)
    for _ in range(depth):
        u.extend()
    assert callable(lemma)
    bad = z3.Or([z3.Not(lemma(s)) for s in u.states])
    assert u.check(bad) == z3.unsat


@pytest.mark.parametrize("index", range(len(VARIANTS)))
def test_mmu_lock_mutual_exclusion_and_invalid_implies_obsolete(index: int) -> None:
    layout = make_layout(VARIANTS[index], Config(vcpus=("special", "tdp"), notifier=True), 10)

    def lemma(s: State) -> z3.ExprRef:
        writers = [s.holds_mmu_lock(v) for v in layout.vcpus if v.lock_mode == "write"]
        writers += [s.zapper_holds_mmu_lock(z) for z in layout.zappers]
        one_writer = z3.AtMost(*writers, 1)
        exclusive = z3.Implies(s.has_writer(), z3.Not(s.has_readers()))
        ghost = z3.And(
            [
                z3.Implies(z3.And(s.root(v, "loaded"), s.root(v, "invalid")), s.root(v, "obsolete"))
                for v in layout.vcpus
            ]
        )
        return z3.And(one_writer, exclusive, ghost)

    _lemma_holds(layout, 10, lemma)
