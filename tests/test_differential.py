"""Differential check: BMC (spec) and exhaustive search (impl) agree on every preset for the
small configurations: same verdict, same shortest counterexample length, and each engine's
counterexample replays on the other. ``kvmmu diff --max-vcpus 3`` runs the larger ones."""

from __future__ import annotations

import pytest

from kvmmu.differential import compare, configurations
from kvmmu.vocab import PRESETS, Problem, make_variant


@pytest.mark.parametrize("preset", list(PRESETS))
def test_engines_agree_on_one_vcpu(preset: str) -> None:
    for config in configurations(1):
        for c in compare(Problem(make_variant(preset), config), depth=14):
            assert c.agrees, (c.problem.config.vcpus, c.invariant, c.mismatches)


@pytest.mark.slow  # minutes: the main job runs it (pytest -m slow)
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
