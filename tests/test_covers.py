"""The rule of ``docs/protocol.md`` section 6.5: which cover targets a proof must reach.

A target is ruled out "by construction" when no interleaving of the variant and configuration
reaches it at any depth. ``kvmmu.vocab.required_covers`` derives that from the knobs and the
vCPUs' root kinds; here the implementation's exhaustive search over the *whole* state space (an
independent reachability oracle, no bound) checks the rule, for every preset and every value of
every knob changed one at a time, on each root kind alone and on a few mixes.
"""

from __future__ import annotations

from functools import cache

import pytest

from impl import explore
from kvmmu.vocab import (
    COVER_TARGETS,
    KNOBS,
    PRESETS,
    Config,
    Knobs,
    KnobValue,
    Variant,
    make_variant,
    required_covers,
)

# fault.map stays required even where every fault crashes (v5.16-rc4 on special roots alone):
# a proof in which no fault ever maps says nothing, and that is what a cover check is for
ALWAYS_REQUIRED = frozenset({"fault.map"})


def _one_knob_variants() -> list[Variant]:
    """Every preset, and every preset with one knob set to each of its other values."""
    seen: dict[tuple[tuple[str, KnobValue], ...], Variant] = {}
    for preset in PRESETS:
        base = make_variant(preset)
        variants = [base] + [
            make_variant(preset, {knob: value})
            for knob, values in KNOBS.items()
            for value in values
            if value != base[knob]
        ]
        for v in variants:
            seen.setdefault(tuple(sorted(v.knobs.items())), v)
    return list(seen.values())


VARIANTS = _one_knob_variants()
SINGLE = [Config(vcpus=(kind,), notifier=True, max_zaps=1) for kind in ("special", "sp", "tdp")]


@cache
def _reachable(variant: Variant, config: Config) -> frozenset[str]:
    return explore(variant, config, [], max_depth=None).covers


def _check(variant: Variant, config: Config) -> None:
    required = required_covers(Knobs.of(variant), config)
    reachable = _reachable(variant, config)
    for target in COVER_TARGETS:
        if target in ALWAYS_REQUIRED:
            assert target in required, (variant.name, config.vcpus, target)
            continue
        assert (target in required) == (target in reachable), (
            variant.name,
            config.vcpus,
            target,
            "required" if target in required else "not required",
            "reachable" if target in reachable else "unreachable",
        )


@pytest.mark.parametrize("config", SINGLE, ids=lambda c: ",".join(c.vcpus))
def test_required_is_exactly_reachable_on_one_vcpu(config: Config) -> None:
    for variant in VARIANTS:
        _check(variant, config)


@pytest.mark.parametrize(
    ("preset", "kinds"),
    [(p, ("special", "special")) for p in PRESETS]
    + [(p, ("special", "sp")) for p in ("paolo", "v5.16-rc4")],
)
def test_required_is_exactly_reachable_on_two_vcpus(preset: str, kinds: tuple[str, ...]) -> None:
    # "some vCPU" in the rule: the mixes need no notifier to tell the rule apart
    _check(make_variant(preset), Config(vcpus=kinds, max_zaps=1))


@pytest.mark.parametrize(
    "config",
    [
        Config(vcpus=("sp",), zappers=0, notifier=True),
        Config(vcpus=("sp",), max_zaps=0, notifier=True, max_invalidations=0),
        Config(vcpus=("special",), notifier=False, max_zaps=1),
    ],
    ids=["no zapper", "no zap, no invalidation", "no notifier"],
)
def test_required_is_exactly_reachable_without_some_actor(config: Config) -> None:
    for preset in PRESETS:
        _check(make_variant(preset), config)


def test_paolo_on_special_roots_alone_needs_no_obsolete_retry() -> None:
    # issue 10 item 8: a root without sp under paolo can never retry for obsolescence
    for kinds in [("special",), ("special", "special")]:
        required = required_covers(Knobs.of(make_variant("paolo")), Config(vcpus=kinds))
        assert "retry.obsolete" not in required
        assert {"fault.map", "zap.zap_obsolete", "enter.after_reload"} <= required
    # one vCPU with an sp, and the retry is required again
    mixed = required_covers(Knobs.of(make_variant("paolo")), Config(vcpus=("special", "sp")))
    assert "retry.obsolete" in mixed
