"""Liveness (docs/protocol.md 6.11): each property held and violated, fairness shown to matter,
lassos checked by both engines, the two engines agreeing on small configurations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from impl.fair import check_lasso as impl_check
from impl.fair import find_lasso, strongly_connected_components
from kvmmu.cli import main
from kvmmu.liveness_diff import compare_liveness
from kvmmu.obligations import load_file
from kvmmu.vocab import LIVENESS_PROPERTIES, Config, Problem, Step, make_variant
from kvmmu.yamlio import InputError
from spec.liveness import check_lasso as spec_check
from spec.liveness import lasso_bmc, prove_liveness

ROOT = Path(__file__).resolve().parent.parent

# K4: v5.18's lockless is_obsolete_root() with the request made before the new generation
K4 = make_variant(
    "v5.18",
    {"kvm_mmu_free_obsolete_roots.is_obsolete_root": "lockless", "zap.request_before_gen": True},
)
# K6: is_page_fault_stale(..., int mmu_seq), v5.16 to v6.2
K6 = make_variant("v5.16", {"is_page_fault_stale.mmu_seq": "int"})
K6_FIXED = make_variant("v5.16", {"is_page_fault_stale.mmu_seq": "unsigned_long"})
SP = Config(vcpus=("sp",))
# no zapper: the notifier alone, the smallest problem with a starvation lasso
NOTIFIER_ONLY = Config(vcpus=("sp",), zappers=0, notifier=True)


def test_tarjan_finds_the_components() -> None:
    edges = {0: [1], 1: [2], 2: [0, 3], 3: [4], 4: [3], 5: []}
    found = strongly_connected_components(6, lambda n: edges[n])
    assert sorted(sorted(c) for c in found) == [[0, 1, 2], [3, 4], [5]]


@pytest.mark.parametrize("prop", LIVENESS_PROPERTIES)
def test_k4_is_a_fair_lasso_in_both_engines(prop: str) -> None:
    found = find_lasso(K4, SP, prop)
    assert found.verdict == "violated" and found.vcpu == "vcpu0"
    assert impl_check(K4, SP, prop, "vcpu0", found.trace, found.loop_start) is None
    # the loop is the vCPU alone, retrying on the root it kept
    assert {s.actor for s in found.loop} == {"vcpu0"}
    assert Step("vcpu0", "fault.map") not in found.loop
    # the spec accepts it once the loop has run once (its dead fault locals then repeat too)
    twice = found.prefix + found.loop + found.loop
    start = len(found.prefix) + len(found.loop)
    assert spec_check(K4, SP, prop, "vcpu0", twice, start) is None


def test_k4_fix_and_the_seed_patch_make_progress() -> None:
    fixed = make_variant("v5.18", {"kvm_mmu_free_obsolete_roots.is_obsolete_root": "lockless"})
    for variant in (fixed, make_variant("v5.16")):
        for prop in LIVENESS_PROPERTIES:
            assert find_lasso(variant, SP, prop).verdict == "holds"
    proof = prove_liveness(make_variant("v5.16"), SP, "fault_progress")
    assert proof.verdict == "proved" and proof.k == 1
    assert "fault_progresses[vcpu0]" in proof.lemmas and proof.covered == {"vcpu0": True}


def test_k_liveness_does_not_prove_k4() -> None:
    # the progress lemma is not inductive under K4, so the counter is not shown bounded; the
    # lasso search is cut short here (the lasso needs 25 steps): not_proved, never proved
    result = prove_liveness(K4, SP, "fault_progress", max_k=1, depth=3)
    assert result.verdict == "not_proved"


@pytest.mark.parametrize("prop", LIVENESS_PROPERTIES)
def test_k6_is_a_fair_lasso_in_both_engines(prop: str) -> None:
    found = find_lasso(K6, NOTIFIER_ONLY, prop)
    assert found.verdict == "violated" and found.vcpu == "vcpu0"
    # after the invalidation has ended, the vCPU alone retries on a fresh snapshot every time
    assert Step("notifier", "mn.end") in found.prefix
    assert {s.actor for s in found.loop} == {"vcpu0"}
    assert Step("vcpu0", "fault.snapshot") in found.loop
    assert Step("vcpu0", "fault.map") not in found.loop
    assert impl_check(K6, NOTIFIER_ONLY, prop, "vcpu0", found.trace, found.loop_start) is None
    twice = found.prefix + found.loop + found.loop
    start = len(found.prefix) + len(found.loop)
    assert spec_check(K6, NOTIFIER_ONLY, prop, "vcpu0", twice, start) is None
    # (the spec's shortest lasso, checked by the implementation: test_k6_in_the_liveness_knob_sweep)
    # the same steps under the fix are no run: the check maps instead of retrying
    why = impl_check(K6_FIXED, NOTIFIER_ONLY, prop, "vcpu0", found.trace, found.loop_start)
    assert why is not None and "not enabled" in why


def test_k6_needs_the_int_and_an_invalidation() -> None:
    # the fix, and the bug without a notifier to push the sequence past 2^31, make progress
    no_notifier = Config(vcpus=("sp",), zappers=0)
    for variant, config in [(K6_FIXED, NOTIFIER_ONLY), (K6_FIXED, SP), (K6, no_notifier)]:
        for prop in LIVENESS_PROPERTIES:
            assert find_lasso(variant, config, prop).verdict == "holds"
    # the default is today's model exactly: the fix is the v5.16 preset
    assert dict(K6_FIXED.knobs) == dict(make_variant("v5.16").knobs)
    proof = prove_liveness(K6_FIXED, NOTIFIER_ONLY, "fault_progress")
    assert proof.verdict == "proved" and proof.covered == {"vcpu0": True}
    # the bug is never proved: the progress lemma does not hold once the bit is set
    assert prove_liveness(K6, NOTIFIER_ONLY, "fault_progress", depth=3).verdict == "not_proved"


def test_k6_ghost_bit_in_both_engines() -> None:
    from impl.engine import read_path
    from impl.model import Model
    from kvmmu.refinement import Refinement

    names = ["vcpu.load", "mn.start", "mn.end", "vcpu.enter", "vcpu.fault", "fault.snapshot"]
    names += ["fault.faultin", "fault.lock", "fault.check"]
    steps = [Step("notifier" if n.startswith("mn.") else "vcpu0", n) for n in names]
    for variant, expected in [(K6, True), (K6_FIXED, False)]:
        model = Model.of(variant, NOTIFIER_ONLY)
        refinement = Refinement.of(variant, NOTIFIER_ONLY, model)
        m = model.initial()
        assert read_path(model, m, "kvm.mmu_notifier_seq.bit31") is False
        for step in steps:
            # the spec's transition relation agrees on every path, the ghost included
            m, mismatches = refinement.execute(m, step)
            assert not mismatches, mismatches
            assert not refinement.check_enabled(m)
        assert read_path(model, m, "kvm.mmu_notifier_seq.bit31") is expected
        # a fresh snapshot: only the int loses it
        assert read_path(model, m, "vcpu0.fault.stale") is expected


def test_k6_in_the_liveness_knob_sweep() -> None:
    # each engine's lasso is checked on the other (compare_liveness); no_retry_livelock's spec
    # lasso is pinned by proofs/kernel_liveness.yaml
    for c in compare_liveness(Problem(K6, NOTIFIER_ONLY), ("fault_progress",), lasso_depth=16):
        assert c.agrees and c.conclusive, c.mismatches
        assert c.spec_verdict == c.impl_verdict == "violated"
        assert c.spec_lasso == (9, 7) and c.impl_lasso == (3, 7)
    from kvmmu.differential import one_knob_variants

    assert K6 in one_knob_variants(["v5.16"])


def test_fairness_matters_the_starvation_lasso() -> None:
    for prop in LIVENESS_PROPERTIES:
        assert find_lasso(make_variant("v5.16"), NOTIFIER_ONLY, prop).verdict == "holds"
        unfair = find_lasso(make_variant("v5.16"), NOTIFIER_ONLY, prop, fairness=False)
        assert unfair.verdict == "violated"
        # the notifier started and is never scheduled again
        assert Step("notifier", "mn.start") in unfair.prefix
        assert all(s.actor == "vcpu0" for s in unfair.loop)
        args = (make_variant("v5.16"), NOTIFIER_ONLY, prop, "vcpu0", unfair.trace)
        assert impl_check(*args, unfair.loop_start, fairness=False) is None
        why = impl_check(*args, unfair.loop_start, fairness=True)
        assert why is not None and "notifier" in why


def test_spec_lasso_bmc_finds_the_shortest_starvation_lasso() -> None:
    v516 = make_variant("v5.16")
    found = lasso_bmc(v516, NOTIFIER_ONLY, "no_retry_livelock", depth=16, fairness=False)
    assert found.verdict == "violated"
    assert (len(found.prefix), len(found.loop)) == (8, 7)
    assert (
        spec_check(v516, NOTIFIER_ONLY, "no_retry_livelock", "vcpu0", found.trace, 8, False) is None
    )
    why = spec_check(v516, NOTIFIER_ONLY, "no_retry_livelock", "vcpu0", found.trace, 8, True)
    assert why is not None and "unfair" in why
    assert (
        impl_check(v516, NOTIFIER_ONLY, "no_retry_livelock", "vcpu0", found.trace, 8, False) is None
    )
    # a loop start that does not close the loop is rejected by both
    assert "not the state" in (
        spec_check(v516, NOTIFIER_ONLY, "fault_progress", "vcpu0", found.trace, 7, False) or ""
    )
    assert "not the state" in (
        impl_check(v516, NOTIFIER_ONLY, "fault_progress", "vcpu0", found.trace, 7, False) or ""
    )


@pytest.mark.parametrize(
    ("preset", "config", "fair"),
    [
        ("paolo", Config(vcpus=("special",)), True),
        ("v5.16", NOTIFIER_ONLY, True),
        ("v5.16", NOTIFIER_ONLY, False),
    ],
)
def test_the_engines_agree(preset: str, config: Config, fair: bool) -> None:
    for c in compare_liveness(Problem(make_variant(preset), config), fair=fair, lasso_depth=16):
        assert c.agrees, c.mismatches
        assert c.conclusive
        assert (c.spec_verdict == "violated") == (c.impl_verdict == "violated")


def test_cli_lasso_json_and_itf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    itf = tmp_path / "lasso.itf.json"
    argv = ["search", "--vcpus", "sp", "--zappers", "0", "--notifier", "--no-fairness"]
    status = main([*argv, "--property", "fault_progress", "--json", "--itf", str(itf)])
    assert status == 1
    out = json.loads(capsys.readouterr().out)
    (result,) = out["results"]
    # the implementation's lasso: vcpu.load, mn.start, then the vCPU's retrying loop
    assert result["verdict"] == "violated" and result["loop"] == 2 and len(result["trace"]) == 9
    doc = json.loads(itf.read_text())
    assert doc["loop"] == 2 and len(doc["states"]) == 10
    assert doc["states"][2]["vcpu0"] == doc["states"][9]["vcpu0"]
    assert main(["search", "--vcpus", "sp", "--property", "fault_progress"]) == 0
    assert main(["search", "--property", "nonsense"]) == 2
    assert main(["prove", "--property", "fault_progress", "--invariant", "no_null_deref"]) == 2


def test_obligation_property_fields(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    head = "format: kvmmu-proofs/1\ndescription: t\nobligations:\n"
    path.write_text(
        head + "  - {id: a, variant: v5.16, property: fault_progress, expect: proved}\n"
    )
    (ob,) = load_file(path)
    assert ob.liveness and ob.engine == "liveness" and ob.fairness
    for body, field in [
        ("{id: a, variant: v5.16, property: nope, expect: proved}", "property"),
        ("{id: a, variant: v5.16, expect: proved}", "obligations[1]"),
        ("{id: a, variant: v5.16, property: fault_progress, expect: holds}", "expect"),
        (
            "{id: a, variant: v5.16, invariant: no_null_deref, fairness: false, expect: holds}",
            "fairness",
        ),
    ]:
        path.write_text(head + f"  - {body}\n")
        with pytest.raises(InputError) as err:
            load_file(path)
        assert field in str(err.value)


def test_case_lasso_is_checked_by_both_engines(tmp_path: Path) -> None:
    from kvmmu.conformance.case import load_case
    from kvmmu.conformance.check import check_case
    from kvmmu.conformance.runner import load_engine

    source = ROOT / "conformance" / "cases" / "liveness" / "notifier_starvation_no_fairness.yaml"
    engines = [load_engine("impl"), load_engine("spec")]
    assert all(check_case(load_case(source), e).passed for e in engines)
    # under fairness the same loop is no lasso: the notifier is runnable and never steps
    fair = tmp_path / "fair.yaml"
    fair.write_text(source.read_text().replace("fairness: false", "fairness: true"))
    for engine in engines:
        result = check_case(load_case(fair), engine)
        assert any("unfair loop: notifier" in m for m in result.mismatches), result.mismatches
    # a loop start that does not close the loop
    off = tmp_path / "off.yaml"
    off.write_text(source.read_text().replace("loop: 8", "loop: 7"))
    for engine in engines:
        result = check_case(load_case(off), engine)
        assert any("not the state after step 7" in m for m in result.mismatches)


def test_diff_liveness_knobs_all_sweeps_the_livelock_knobs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import kvmmu.liveness_diff as ld

    seen: list[Problem] = []

    def fake(problem: Problem, fair: bool = True, lasso_depth: int = 30) -> list[object]:
        seen.append(problem)
        return []

    monkeypatch.setattr(ld, "compare_liveness", fake)
    argv = ["diff", "--liveness", "--max-vcpus", "1", "--presets", "v5.16", "--json"]
    assert main([*argv, "--knobs", "all"]) == 0
    variants = {p.variant for p in seen}
    assert K6 in variants and len(variants) > 10
    assert {p.config.vcpus for p in seen} == {("sp",), ("special",), ("tdp",)}
    seen.clear()
    assert main(argv) == 0
    assert {p.variant for p in seen} == {make_variant("v5.16")}
    capsys.readouterr()
