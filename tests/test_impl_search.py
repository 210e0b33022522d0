"""The exhaustive search of impl: shortest violations, holds cases, bounds, validation."""

from __future__ import annotations

from collections import Counter

import pytest

from impl import ImplEngine, explore
from kvmmu.vocab import COVER_TARGETS, INVARIANTS, Config, KnobValue, Step, make_variant

SEED = Config()  # vcpus [special, sp], one zapper, no notifier


def names(trace: tuple[Step, ...]) -> list[str]:
    return [str(s) for s in trace]


def test_seed_config_paolo_violates_no_spte_in_obsolete_root_in_13_steps() -> None:
    result = explore(make_variant("paolo"), SEED, ["no_spte_in_obsolete_root"])
    trace = result.violations["no_spte_in_obsolete_root"]
    # vcpu0 (special root): load, enter, fault, snapshot, faultin; a whole zap; lock, check, map
    assert len(trace) == 13
    assert Counter(names(trace)) == Counter(
        [f"vcpu0 vcpu.{s}" for s in ("load", "enter", "fault")]
        + [f"vcpu0 fault.{s}" for s in ("snapshot", "faultin", "lock", "check", "map")]
        + [f"zapper zap.{s}" for s in ("lock", "new_gen", "request", "zap_obsolete", "unlock")]
    )
    assert trace[-1] == Step("vcpu0", "fault.map")
    # the trace really violates the invariant, at its last step, when replayed
    replay = ImplEngine().replay(make_variant("paolo"), SEED, trace)
    assert replay.blocked is None
    assert replay.first_violation == {"no_spte_in_obsolete_root": 13}


def test_seed_config_v5_16_keeps_every_invariant() -> None:
    result = explore(make_variant("v5.16"), SEED)
    assert result.violations == {}
    assert result.states > 1000
    assert result.depth > 13
    # every cover target but the notifier retry (no notifier here) is reached
    assert result.covers == frozenset(COVER_TARGETS) - {"retry.notifier"}


def test_bounded_search_finds_a_violation_iff_one_is_within_the_bound() -> None:
    paolo = make_variant("paolo")
    assert explore(paolo, SEED, ["no_spte_in_obsolete_root"], max_depth=12).violations == {}
    bounded = explore(paolo, SEED, ["no_spte_in_obsolete_root"], max_depth=13)
    assert len(bounded.violations["no_spte_in_obsolete_root"]) == 13
    assert explore(paolo, SEED, max_depth=5).depth == 5


def test_search_is_deterministic() -> None:
    variant = make_variant("v5.16", {"stale_check.reload_request": "check"})
    first = explore(variant, SEED)
    second = explore(variant, SEED)
    assert first.violations == second.violations
    assert (first.states, first.depth, first.covers) == (second.states, second.depth, second.covers)


# (preset, overrides, config, violated invariant, its shortest length or None for "some")
VIOLATED: list[tuple[str, dict[str, KnobValue], Config, str, int | None]] = [
    ("v5.16-rc4", {}, SEED, "no_null_deref", 7),
    ("v5.16", {"stale_check.mmu_notifier": False}, Config(notifier=True), "no_stale_pfn", 9),
    ("v5.16", {"zap.respect_root_count": False}, SEED, "no_use_after_free", 5),
    ("v5.16", {"stale_check.reload_request": "check"}, SEED, "no_guest_on_obsolete_root", 14),
    (
        "v5.16",
        {"zap.request_before_gen": True, "zap.unlock_between_gen_and_request": True},
        SEED,
        "no_guest_on_obsolete_root",
        9,
    ),
    ("paolo", {}, SEED, "no_spte_in_obsolete_root", 13),
    ("v5.15", {}, SEED, "no_spte_in_obsolete_root", 13),
    ("v5.16", {"zap.unlock_between_gen_and_request": True}, SEED, "no_spte_in_obsolete_root", 11),
    ("v5.16", {"stale_check.request_before_lock": True}, SEED, "no_spte_in_obsolete_root", 14),
]


@pytest.mark.parametrize(("preset", "overrides", "config", "invariant", "length"), VIOLATED)
def test_invariant_is_violated(
    preset: str,
    overrides: dict[str, KnobValue],
    config: Config,
    invariant: str,
    length: int | None,
) -> None:
    variant = make_variant(preset, overrides)
    trace = explore(variant, config, [invariant]).violations[invariant]
    assert length is None or len(trace) == length
    replay = ImplEngine().replay(variant, config, trace)
    assert replay.blocked is None
    assert replay.first_violation[invariant] == len(trace)


# (preset, overrides, config, invariant that holds)
HOLDS: list[tuple[str, dict[str, KnobValue], Config, str]] = [
    ("v5.16", {}, SEED, "no_null_deref"),
    # Lai Jiangshan's shadow pages for special roots make the unguarded check safe
    ("v5.16-rc4", {"special_roots_have_sp": True}, SEED, "no_null_deref"),
    ("v5.16", {}, Config(notifier=True), "no_stale_pfn"),
    ("v5.16", {}, SEED, "no_use_after_free"),
    ("v5.16", {}, SEED, "no_guest_on_obsolete_root"),
    # Paolo's point: without an unlock in between, the window is closed by the request
    ("v5.16", {"zap.unlock_between_gen_and_request": True}, SEED, "no_guest_on_obsolete_root"),
    ("paolo", {}, SEED, "no_guest_on_obsolete_root"),
    ("v5.16", {}, SEED, "no_spte_in_obsolete_root"),
    ("v5.18", {}, SEED, "no_spte_in_obsolete_root"),
    ("lai", {}, SEED, "no_spte_in_obsolete_root"),
    ("paolo", {}, Config(vcpus=("sp", "tdp")), "no_spte_in_obsolete_root"),
    ("v5.16", {"zap.yield": True}, SEED, "no_spte_in_obsolete_root"),
    ("v5.16", {"generation": "counter"}, SEED, "no_spte_in_obsolete_root"),
]


@pytest.mark.parametrize(("preset", "overrides", "config", "invariant"), HOLDS)
def test_invariant_holds(
    preset: str, overrides: dict[str, KnobValue], config: Config, invariant: str
) -> None:
    result = explore(make_variant(preset, overrides), config, [invariant])
    assert result.violations == {}
    assert "fault.map" in result.covers and "zap.zap_obsolete" in result.covers


def test_each_invariant_has_a_violating_case() -> None:
    assert {case[3] for case in VIOLATED} == set(INVARIANTS)


def test_notifier_retry_is_covered_only_with_the_notifier() -> None:
    with_notifier = explore(make_variant("v5.16"), Config(vcpus=("sp",), notifier=True))
    assert with_notifier.covers == frozenset(COVER_TARGETS)
    without = explore(make_variant("v5.16"), Config(vcpus=("sp",)))
    assert "retry.notifier" not in without.covers


def test_one_search_reports_each_invariants_own_shortest_trace() -> None:
    variant = make_variant("v5.16", {"stale_check.reload_request": "check"})
    both = explore(variant, SEED)
    assert set(both.violations) == {"no_spte_in_obsolete_root", "no_guest_on_obsolete_root"}
    for invariant, trace in both.violations.items():
        assert trace == explore(variant, SEED, [invariant]).violations[invariant]
    assert len(both.violations["no_guest_on_obsolete_root"]) == 14
    assert len(both.violations["no_spte_in_obsolete_root"]) == 20


def test_unbounded_zaps_and_invalidations_still_terminate() -> None:
    config = Config(vcpus=("sp",), notifier=True, max_zaps=None, max_invalidations=None)
    unbounded = explore(make_variant("v5.16"), config)
    bounded = explore(make_variant("v5.16"), Config(vcpus=("sp",), notifier=True))
    assert unbounded.violations == {}
    assert 0 < unbounded.states < 10_000
    assert unbounded.states != bounded.states


def test_unbounded_counter_generation_is_rejected() -> None:
    variant = make_variant("v5.16", {"generation": "counter"})
    with pytest.raises(ValueError, match="max_zaps"):
        explore(variant, Config(max_zaps=None))


@pytest.mark.parametrize(
    ("config", "invariants", "message"),
    [
        (Config(vcpus=()), INVARIANTS, "vCPU"),
        (Config(vcpus=("pae",)), INVARIANTS, "root kind"),
        (Config(zappers=3), INVARIANTS, "zappers"),
        (SEED, ("no_such_thing",), "unknown invariant"),
    ],
)
def test_bad_requests_are_rejected(
    config: Config, invariants: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        explore(make_variant("v5.16"), config, invariants)
