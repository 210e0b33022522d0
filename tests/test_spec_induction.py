"""Unbounded proofs by k-induction with proved lemmas: the seed results for every depth, the
verdicts that are not proofs (violated, not_inductive, unknown), and the lemmas' own proofs."""

from __future__ import annotations

import pytest

from kvmmu.vocab import INVARIANTS, Config, KnobValue, Step, make_variant
from spec import SpecEngine
from spec.induction import ProofResult, prove, render, vacuous
from spec.lemmas import FAMILIES, Lemma, candidates, prove_lemmas, refute
from spec.state import State
from spec.variants import PC_GUEST, make_layout

# the seed configuration with the notifier, zaps and invalidations unbounded (the proofs are
# for every depth, so the bounds are not needed)
UNBOUNDED = Config(vcpus=("special", "sp"), notifier=True, max_zaps=None, max_invalidations=None)
BOUNDED = Config(vcpus=("special", "sp"), notifier=True)  # max_zaps 2, max_invalidations 1
KEPT_BY_V5_16 = ("no_spte_in_obsolete_root", "no_use_after_free", "no_stale_pfn", "no_null_deref")


def _one(results: list[ProofResult]) -> ProofResult:
    assert len(results) == 1
    return results[0]


def _by_name(results: list[ProofResult]) -> dict[str, ProofResult]:
    return {r.invariant: r for r in results}


@pytest.mark.parametrize("config", [UNBOUNDED, BOUNDED], ids=["unbounded", "bounded"])
def test_v5_16_keeps_every_invariant_for_every_depth(config: Config) -> None:
    results = prove(make_variant("v5.16"), config, INVARIANTS, max_k=4, timeout_s=120)
    assert [r.invariant for r in results] == list(INVARIANTS)
    for r in results:
        assert r.verdict == "proved", render(r)
        assert 1 <= r.k <= 4
        assert not vacuous(r), render(r)  # every required cover reached within the base bound
        assert r.depth >= max(r.k, 20)
        assert r.trace == () and r.cti == ()
        assert r.z3_version
    found = _by_name(results)
    # the special root's safety rests on the reload request: the proof says so
    spte = found["no_spte_in_obsolete_root"]
    assert "request_coverage[vcpu0]" in spte.lemmas, spte.lemmas
    assert "map_root_fresh[vcpu0]" in spte.lemmas
    # a lemma reported is one of the candidates, in candidate order, closed under dependencies
    names = [x.name for x in candidates(make_layout(make_variant("v5.16"), config, 20))]
    assert list(spte.lemmas) == [n for n in names if n in spte.lemmas]


def test_paolo_keeps_guest_safety_but_installs_sptes_into_obsolete_roots() -> None:
    results = _by_name(prove(make_variant("paolo"), UNBOUNDED, max_k=4, timeout_s=120))
    guest = results["no_guest_on_obsolete_root"]
    assert guest.verdict == "proved", render(guest)
    assert not vacuous(guest)
    spte = results["no_spte_in_obsolete_root"]
    assert spte.verdict == "violated", render(spte)
    assert spte.k == len(spte.trace) == 13  # the shortest, as the BMC finds it
    assert spte.trace[-1] == Step("vcpu0", "fault.map")  # the special-root vCPU
    replay = SpecEngine().replay(make_variant("paolo"), UNBOUNDED, spte.trace)
    assert replay.first_violation.get("no_spte_in_obsolete_root") == 13
    # the lemma that would have closed the gap is false under paolo, so it is not used
    assert all("map_root_fresh[vcpu0]" not in r.lemmas for r in results.values())


@pytest.mark.parametrize(
    "vcpus", [("special",), ("special", "sp", "tdp")], ids=["one-vcpu", "three-vcpus"]
)
def test_v5_16_proofs_hold_for_one_and_three_vcpus(vcpus: tuple[str, ...]) -> None:
    config = Config(vcpus=vcpus, notifier=True, max_zaps=None, max_invalidations=None)
    invariants = ("no_spte_in_obsolete_root", "no_guest_on_obsolete_root", "no_stale_pfn")
    for r in prove(make_variant("v5.16"), config, invariants, max_k=3, timeout_s=120):
        assert r.verdict == "proved", render(r)
        assert not vacuous(r), render(r)


def test_null_deref_of_v5_16_rc4_is_violated_not_proved() -> None:
    r = _one(prove(make_variant("v5.16-rc4"), UNBOUNDED, ["no_null_deref"], max_k=4))
    assert r.verdict == "violated", render(r)
    assert r.trace[-1] == Step("vcpu0", "fault.check")
    assert r.states[-1]["vcpu0.mode"] == "crashed"
    replay = SpecEngine().replay(make_variant("v5.16-rc4"), UNBOUNDED, r.trace)
    assert replay.first_violation.get("no_null_deref") == len(r.trace)


def test_plain_induction_fails_where_lemmas_succeed() -> None:
    variant = make_variant("v5.16")
    bare = _one(prove(variant, UNBOUNDED, ["no_spte_in_obsolete_root"], max_k=3, lemmas=False))
    assert bare.verdict == "not_inductive", render(bare)
    assert bare.k == 3 and bare.lemmas == ()
    # the counterexample to induction: k + 1 steps, k + 2 states, the last step bad
    assert len(bare.cti) == 4 and len(bare.cti_states) == 5
    last = bare.cti[-1]
    assert last.name == "fault.map"
    before = bare.cti_states[-2]
    assert before[f"{last.actor}.at"] == "fault.map"
    # bad: the root is ghost-obsolete, or (unreachable) the vCPU faults with no root at all
    assert before[f"{last.actor}.root.obsolete"] in (True, None)
    assert bare.trace == ()  # a CTI is not a counterexample
    assert "counterexample to induction" in render(bare)
    helped = _one(prove(variant, UNBOUNDED, ["no_spte_in_obsolete_root"], max_k=3))
    assert helped.verdict == "proved" and helped.k == 1 and helped.lemmas, render(helped)


def test_every_candidate_lemma_is_proved_for_v5_16() -> None:
    layout = make_layout(make_variant("v5.16"), UNBOUNDED, 20)
    proof = prove_lemmas(layout)
    assert proof.lemmas == candidates(layout)
    assert {x.family for x in proof.lemmas} <= set(FAMILIES)
    assert dict(proof.status) == {x.name: "proved" for x in proof.lemmas}
    # a sound proof: no proved lemma is violated by a reachable state within 14 steps
    assert refute(layout, proof.proved, 14) == {}
    # the dependency closure of a proof is inductive on its own
    spte = _one(prove(make_variant("v5.16"), UNBOUNDED, ["no_spte_in_obsolete_root"], max_k=2))
    subset = [x for x in proof.lemmas if x.name in spte.lemmas]
    alone = prove_lemmas(layout, subset)
    assert set(alone.status.values()) == {"proved"}


LEMMA_BREAKERS: list[tuple[dict[str, KnobValue], str, str]] = [
    # kvm_check_request() in is_page_fault_stale() eats the request: coverage is lost
    (
        {"stale_check.reload_request": "check"},
        "request_coverage[vcpu0]",
        "no_guest_on_obsolete_root",
    ),
    # the request is made, the lock dropped, the vCPU reloads, then the generation flips
    (
        {"zap.request_before_gen": True, "zap.unlock_between_gen_and_request": True},
        "request_coverage[vcpu1]",
        "no_guest_on_obsolete_root",
    ),
]


@pytest.mark.parametrize(("overrides", "lemma", "invariant"), LEMMA_BREAKERS)
def test_a_lemma_false_under_a_variant_is_not_used(
    overrides: dict[str, KnobValue], lemma: str, invariant: str
) -> None:
    variant = make_variant("v5.16", overrides)
    layout = make_layout(variant, BOUNDED, 20)
    proof = prove_lemmas(layout, classify_depth=16)
    assert proof.status[lemma] == "false", proof.reason.get(lemma)
    trace = proof.counterexamples[lemma]
    assert trace and SpecEngine().replay(variant, BOUNDED, trace).blocked is None
    assert lemma not in [x.name for x in proof.proved]
    r = _one(prove(variant, BOUNDED, [invariant], max_k=3))
    assert r.verdict == "violated", render(r)  # and the invariant is not proved without it
    assert lemma not in r.lemmas


def test_a_false_candidate_is_dropped_not_assumed() -> None:
    layout = make_layout(make_variant("v5.16"), BOUNDED, 20)
    v0 = layout.vcpus[0]

    def never_in_guest(s: State) -> object:
        return s.pc(v0) != s.pc_val(PC_GUEST)

    bogus = Lemma("never_in_guest[vcpu0]", "busy_vcpu_has_root", never_in_guest)
    proof = prove_lemmas(layout, (*candidates(layout), bogus), classify_depth=6)
    assert proof.status["never_in_guest[vcpu0]"] == "false"
    assert "never_in_guest[vcpu0]" not in [x.name for x in proof.proved]
    assert all("never_in_guest[vcpu0]" not in deps for deps in proof.depends.values())


def test_a_proof_on_too_few_steps_is_flagged_vacuous() -> None:
    # the proof itself needs one step, but a retry because of an obsolete root needs a whole zap
    # inside a fault (13 steps): checked to 8 steps only, the covers are not all reached
    config = Config(vcpus=("special",), notifier=True, max_zaps=None, max_invalidations=None)
    r = _one(prove(make_variant("v5.16"), config, ["no_guest_on_obsolete_root"], cover_depth=8))
    assert r.verdict == "proved", render(r)
    assert r.cover["retry.obsolete"] is False
    assert vacuous(r) and "VACUOUS" in render(r)


@pytest.mark.parametrize("kinds", [("special",), ("special", "special")])
def test_paolo_on_special_roots_alone_is_proved_not_vacuous(kinds: tuple[str, ...]) -> None:
    # issue 10 item 8: no root there has an sp and the request is not tested, so no fault can
    # retry for obsolescence (the finding); every target that can be reached is reached
    r = _one(prove(make_variant("paolo"), Config(vcpus=kinds), ["no_guest_on_obsolete_root"]))
    assert r.verdict == "proved", render(r)
    assert "retry.obsolete" not in r.required_covers
    assert r.cover["retry.obsolete"] is False
    assert not vacuous(r), render(r)


def test_timeout_is_unknown_never_proved() -> None:
    for r in prove(make_variant("v5.16"), UNBOUNDED, INVARIANTS, max_k=3, timeout_s=0.0):
        assert r.verdict == "unknown", render(r)
        assert r.reason
        assert not vacuous(r)


def test_bad_input_is_an_error() -> None:
    r = _one(prove(make_variant("v5.16"), Config(vcpus=("huge",)), ["no_null_deref"]))
    assert r.verdict == "error" and "root kind" in r.reason
    r = _one(prove(make_variant("v5.16"), UNBOUNDED, ["no_such_invariant"], max_k=2))
    assert r.verdict == "error" and "no_such_invariant" in r.reason
    r = _one(prove(make_variant("v5.16"), UNBOUNDED, ["no_null_deref"], max_k=0))
    assert r.verdict == "error"


@pytest.mark.slow  # minutes: a long check (pytest -m slow, run by .ci/run)
def test_proofs_are_deterministic() -> None:
    def run() -> tuple[ProofResult, ProofResult]:
        variant = make_variant("v5.16")
        bare = prove(variant, UNBOUNDED, ["no_stale_pfn"], max_k=2, lemmas=False)
        full = prove(variant, UNBOUNDED, ["no_spte_in_obsolete_root"], max_k=2)
        return bare[0], full[0]

    first, second = run(), run()
    assert first[0].cti == second[0].cti and first[0].cti_states == second[0].cti_states
    assert first[1].lemmas == second[1].lemmas and first[1].k == second[1].k


def test_a_step_case_without_answer_leaves_holds_to_the_base_depth(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Z3 giving up on the step case is simulated: the base case still stands, as a bounded
    # result, and the CLI says so with its own exit status (6), never as a proof (0)
    from kvmmu import cli
    from spec import induction

    def gives_up(*args: object, **kwargs: object) -> object:
        return induction.StepOutcome("unknown", 3, reason="timeout (simulated)")

    monkeypatch.setattr(induction, "step_case", gives_up)
    (r,) = induction.prove(make_variant("v5.16"), Config(), ["no_null_deref"])
    assert r.verdict == "holds" and r.depth == 30 and "step case" in r.reason  # base to max_k
    argv = ["prove", "--engine", "kind", "--invariant", "no_null_deref", "--json"]
    assert cli.main(argv) == 6
    assert '"verdict": "holds"' in capsys.readouterr().out
