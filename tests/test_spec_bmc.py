"""Bounded model checking with the Z3 spec: the seed result, each invariant's counterexample,
vacuity, and that an unanswered query is never reported as a proof."""

from __future__ import annotations

import pytest

from kvmmu.vocab import COVER_TARGETS, INVARIANTS, Config, KnobValue, Step, make_variant
from spec import BmcResult, SpecEngine, bmc, render, unreached, vacuous

SEED = Config(vcpus=("special", "sp"), zappers=1)


def _one(result: list[BmcResult]) -> BmcResult:
    assert len(result) == 1
    return result[0]


def test_seed_paolo_violates_no_spte_in_obsolete_root_in_13_steps() -> None:
    r = _one(bmc(make_variant("paolo"), SEED, ["no_spte_in_obsolete_root"], depth=20))
    assert r.verdict == "violated", render(r)
    # shortest: the special-root vCPU loads, enters, faults (before the kick) and snapshots (4),
    # then faults in, locks, checks and maps (4); the zapper's whole zap runs in between (5)
    assert r.depth == 13 and len(r.trace) == 13, render(r)
    assert len(r.states) == 14
    assert r.trace[-1] == Step("vcpu0", "fault.map")  # vcpu0 has the special root
    assert sum(1 for s in r.trace if s.actor == "zapper") == 5
    assert r.states[-1]["vcpu0.root.spte"] is True
    assert r.states[-1]["vcpu0.root.obsolete"] is True
    assert r.z3_version and r.seconds >= 0
    # the counterexample is a real schedule: the replay agrees, step 13 violates
    replay = SpecEngine().replay(make_variant("paolo"), SEED, r.trace)
    assert replay.blocked is None
    assert replay.first_violation == {"no_spte_in_obsolete_root": 13}


def test_seed_paolo_has_no_shorter_counterexample() -> None:
    r = _one(bmc(make_variant("paolo"), SEED, ["no_spte_in_obsolete_root"], depth=12))
    assert r.verdict == "holds", render(r)
    assert r.depth == 12


def test_seed_v5_16_holds_with_every_cover_but_the_notifier() -> None:
    results = bmc(make_variant("v5.16"), SEED, INVARIANTS, depth=20)
    assert [r.invariant for r in results] == list(INVARIANTS)
    for r in results:
        assert r.verdict == "holds", render(r)
        assert r.depth == 20
        assert r.trace == ()
        assert set(r.cover) == set(COVER_TARGETS)
        assert {t for t, ok in r.cover.items() if ok} == set(COVER_TARGETS) - {"retry.notifier"}
        assert r.cover["retry.notifier"] is False  # no notifier configured
        assert "retry.notifier" not in r.required_covers
        assert not vacuous(r), unreached(r)


INVARIANT_BREAKERS: list[tuple[str, str, dict[str, KnobValue], Config]] = [
    ("no_null_deref", "v5.16-rc4", {}, SEED),
    ("no_stale_pfn", "v5.16", {"stale_check.mmu_notifier": False}, Config(notifier=True)),
    ("no_use_after_free", "v5.16", {"zap.respect_root_count": False}, SEED),
    ("no_guest_on_obsolete_root", "v5.16", {"stale_check.reload_request": "check"}, SEED),
    (
        "no_guest_on_obsolete_root",
        "v5.16",
        {"zap.request_before_gen": True, "zap.unlock_between_gen_and_request": True},
        SEED,
    ),
    ("no_spte_in_obsolete_root", "paolo", {}, SEED),
    ("no_spte_in_obsolete_root", "v5.15", {}, SEED),
    ("no_spte_in_obsolete_root", "v5.16", {"zap.unlock_between_gen_and_request": True}, SEED),
]


@pytest.mark.parametrize(("invariant", "preset", "overrides", "config"), INVARIANT_BREAKERS)
def test_each_invariant_is_violated_by_some_variant(
    invariant: str, preset: str, overrides: dict[str, KnobValue], config: Config
) -> None:
    variant = make_variant(preset, overrides)
    r = _one(bmc(variant, config, [invariant], depth=16))
    assert r.verdict == "violated", render(r)
    assert 0 < r.depth == len(r.trace) <= 16
    replay = SpecEngine().replay(variant, config, r.trace)
    assert replay.blocked is None
    assert replay.first_violation.get(invariant) == r.depth
    # the default variant keeps it, within the same bound
    if not overrides and preset != "v5.16":
        kept = _one(bmc(make_variant("v5.16"), config, [invariant], depth=r.depth))
        assert kept.verdict == "holds", render(kept)


def test_null_deref_counterexample_crashes_the_special_root_vcpu() -> None:
    r = _one(bmc(make_variant("v5.16-rc4"), SEED, ["no_null_deref"], depth=10))
    assert r.verdict == "violated"
    assert r.trace[-1] == Step("vcpu0", "fault.check")
    assert r.states[-1]["vcpu0.mode"] == "crashed"
    assert r.states[-1]["kvm.mmu_lock"] == "write"  # the crashed vCPU keeps the lock


def test_notifier_cover_needs_the_notifier() -> None:
    r = _one(bmc(make_variant("v5.16"), Config(notifier=True), ["no_stale_pfn"], depth=16))
    assert r.verdict == "holds", render(r)
    assert r.cover["retry.notifier"] is True
    assert "retry.notifier" in r.required_covers


def test_vacuity_is_reported_when_the_bound_is_too_small() -> None:
    r = _one(bmc(make_variant("v5.16"), SEED, ["no_spte_in_obsolete_root"], depth=6))
    assert r.verdict == "holds"
    assert r.cover["zap.zap_obsolete"] is True
    assert r.cover["retry.obsolete"] is False  # a retry needs a whole zap inside a fault
    assert vacuous(r)
    assert "retry.obsolete" in unreached(r)


def test_a_crash_on_every_fault_makes_fault_map_unreachable() -> None:
    config = Config(vcpus=("special",))
    r = _one(bmc(make_variant("v5.16-rc4"), config, ["no_spte_in_obsolete_root"], depth=12))
    assert r.verdict == "holds"
    assert r.cover["fault.map"] is False
    assert vacuous(r)


def test_timeout_is_unknown_never_holds() -> None:
    results = bmc(make_variant("v5.16"), SEED, INVARIANTS, depth=10, timeout_s=0.0)
    for r in results:
        assert r.verdict == "unknown", render(r)
        assert r.reason
        assert not vacuous(r)


def test_bad_input_is_an_error() -> None:
    r = _one(bmc(make_variant("v5.16"), Config(vcpus=("huge",)), ["no_null_deref"], depth=3))
    assert r.verdict == "error" and "root kind" in r.reason
    r = _one(bmc(make_variant("v5.16"), SEED, ["no_such_invariant"], depth=3))
    assert r.verdict == "error" and "no_such_invariant" in r.reason


def test_runs_are_deterministic() -> None:
    first = bmc(make_variant("paolo"), SEED, ["no_spte_in_obsolete_root"], depth=14)
    bmc(make_variant("v5.15"), Config(notifier=True), depth=8)  # unrelated work in between
    second = bmc(make_variant("paolo"), SEED, ["no_spte_in_obsolete_root"], depth=14)
    assert first[0].trace == second[0].trace
    assert first[0].states == second[0].states


def test_generation_counter_and_unbounded_zaps() -> None:
    config = Config(vcpus=("sp",), max_zaps=None, notifier=True, max_invalidations=None)
    for generation in ("bit", "counter"):
        variant = make_variant("v5.16", {"generation": generation})
        results = bmc(variant, config, INVARIANTS, depth=12)
        assert all(r.verdict == "holds" for r in results), [render(r) for r in results]


def test_two_zappers_and_yield() -> None:
    variant = make_variant("v5.16", {"zap.yield": True, "zap.serialized": False})
    config = Config(vcpus=("tdp", "special"), zappers=2, notifier=True)
    results = bmc(variant, config, INVARIANTS, depth=14)
    assert all(r.verdict == "holds" for r in results), [render(r) for r in results]
    assert results[0].cover["zap.zap_obsolete"] is True
