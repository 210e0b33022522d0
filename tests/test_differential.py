"""Differential check: BMC (spec) and exhaustive search (impl) agree on every preset for the
small configurations, and on every value of every knob: same verdict, same shortest
counterexample length, and each engine's counterexample replays on the other.
``kvmmu diff --max-vcpus 3`` runs the larger ones, ``kvmmu diff --knobs all`` every knob value
from every preset."""

from __future__ import annotations

from dataclasses import replace

import pytest

from impl import kernel
from impl.params import Params
from impl.state import Machine
from kvmmu.differential import compare, configurations, knob_configurations, one_knob_variants
from kvmmu.vocab import KNOBS, PRESETS, Config, Problem, make_variant


@pytest.mark.parametrize("preset", list(PRESETS))
def test_engines_agree_on_one_vcpu(preset: str) -> None:
    for config in configurations(1):
        for c in compare(Problem(make_variant(preset), config), depth=14):
            assert c.agrees, (c.problem.config.vcpus, c.invariant, c.mismatches)


@pytest.mark.slow  # minutes: a long check (pytest -m slow, run by .ci/run)
@pytest.mark.parametrize("preset", ["v5.16", "paolo", "v5.16-rc4"])
def test_engines_agree_on_the_seed_configuration(preset: str) -> None:
    config = next(c for c in configurations(2) if c.vcpus == ("special", "sp"))
    comparisons = compare(Problem(make_variant(preset), config), depth=14)
    assert all(c.agrees for c in comparisons), [c.mismatches for c in comparisons]


def test_the_comparison_can_disagree() -> None:
    # the check is not vacuous: both sides must report some violation on a buggy variant
    config = next(iter(configurations(1)))
    comparisons = compare(Problem(make_variant("v5.16-rc4"), config), depth=14)
    lengths = {c.invariant: (c.spec_length, c.impl_length) for c in comparisons}
    assert lengths["no_null_deref"] == (7, 7)


# --- every knob value (kvmmu diff --knobs all runs the whole sweep) -----------------------------

SP = Config(vcpus=("sp",), notifier=True, max_zaps=1)


def test_one_knob_variants_reach_every_value_of_every_knob_from_every_preset() -> None:
    variants = one_knob_variants()
    assert len({tuple(sorted(v.knobs.items())) for v in variants}) == len(variants)
    knob_sets = [dict(v.knobs) for v in variants]
    for preset in PRESETS:
        base = dict(make_variant(preset).knobs)
        assert base in knob_sets
        for knob, values in KNOBS.items():
            for value in values:
                assert {**base, knob: value} in knob_sets, (preset, knob, value)
    configs = knob_configurations(2)
    assert any(c.zappers == 2 for c in configs) and any(len(c.vcpus) == 2 for c in configs)
    assert {c.vcpus for c in knob_configurations(1)} == {("sp",), ("special",), ("tdp",)}


@pytest.mark.parametrize("knob", list(KNOBS))
def test_engines_agree_on_every_value_of_each_knob(knob: str) -> None:
    # the small default of the suite: each other value of the knob, from v5.16, on one sp vCPU
    default = make_variant("v5.16")
    for value in KNOBS[knob]:
        if value == default[knob]:
            continue
        problem = Problem(make_variant("v5.16", {knob: value}), SP)
        for c in compare(problem, depth=14):
            assert c.agrees, (knob, value, c.invariant, c.mismatches)


def test_the_knob_sweep_catches_a_request_check_that_always_clears_the_bit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # issue 10 item 9: under reload_request check, clearing the request bit on every
    # fault.check (not only when part 2 fires) lets an sp vCPU re-enter the guest on its
    # obsolete root; the presets never use check, so only the knob sweep can see it
    original = kernel.is_page_fault_stale

    def clears_always(p: Params, m: Machine, i: int) -> Machine | None:
        after = original(p, m, i)
        if after is None or after.vcpus[i].mode == "crashed":
            return after
        return after.with_vcpu(i, replace(after.vcpus[i], request=False))

    monkeypatch.setitem(kernel._COMMON, "fault.check", clears_always)
    problem = Problem(make_variant("v5.16", {"stale_check.reload_request": "check"}), SP)
    lengths = {c.invariant: (c.spec_length, c.impl_length) for c in compare(problem, depth=14)}
    assert lengths["no_guest_on_obsolete_root"] == (None, 14)
