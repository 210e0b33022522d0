"""The necessity analysis (``kvmmu why``, ``spec.why``): which named facts a proof needs.

The seed question, "is the reload-pending check needed?": for v5.16 on vCPUs ``special,sp`` the
request test for roots without a shadow page (``is_page_fault_stale.reload_request``) is in the
core of ``no_spte_in_obsolete_root``, and dropping it gives the 13-step counterexample of Paolo's
variant; on ``sp`` roots alone it is not needed, while the obsolete-sp test is.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from kvmmu.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_VIOLATION, main
from kvmmu.necessity import report_json, report_text
from kvmmu.vocab import KNOBS, Config, Knobs, Step, make_variant
from spec import bmc
from spec.facts import FACTS
from spec.variants import relaxed_zapper_program, zapper_program
from spec.why import WhyResult, analyse, check_dropped, offered_facts

SPTE = "no_spte_in_obsolete_root"
REQUEST = "is_page_fault_stale.reload_request"
OBSOLETE_SP = "is_page_fault_stale.obsolete_sp"


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(list(argv))
    return status, out.getvalue()


@pytest.fixture(scope="module")
def seed_json() -> tuple[int, dict[str, object]]:
    """The done-when command, as JSON."""
    status, text = _cli("why", "--preset", "v5.16", "--invariant", SPTE, "--json")
    return status, json.loads(text)


@pytest.fixture(scope="module")
def sp_only() -> WhyResult:
    return analyse(make_variant("v5.16"), Config(vcpus=("sp",)), SPTE, depth=20)


def _facts(doc: dict[str, object]) -> dict[str, dict[str, object]]:
    rows = doc["facts"]
    assert isinstance(rows, list)
    return {row["fact"]: row for row in rows}


@pytest.mark.slow  # minutes: a long check (pytest -m slow, run by .ci/run)
def test_the_request_test_is_needed_for_special_roots(
    seed_json: tuple[int, dict[str, object]],
) -> None:
    status, doc = seed_json
    assert status == EXIT_OK
    assert doc["verdict"] == "holds"
    assert doc["config"] == Config().as_dict()  # default: vCPUs special,sp
    core = doc["core"]
    assert isinstance(core, list)
    assert REQUEST in core and OBSOLETE_SP in core
    request = _facts(doc)[REQUEST]
    assert request["in_core"] is True and request["necessary"] is True
    dropped = request["dropped"]
    assert isinstance(dropped, dict)
    assert dropped["verdict"] == "violated"
    assert dropped["depth"] == 13
    trace = dropped["trace"]
    assert isinstance(trace, list) and len(trace) == 13
    # the special root's vCPU maps after a check that, with the request test, would say stale
    assert trace[-1] == {"actor": "vcpu0", "step": "fault.map"}
    assert trace[-2] == {"actor": "vcpu0", "step": "fault.check"}
    assert dropped["exploits"] == [12]


@pytest.mark.slow  # minutes: a long check (pytest -m slow, run by .ci/run)
def test_facts_outside_the_core_hold_when_dropped(
    seed_json: tuple[int, dict[str, object]],
) -> None:
    _, doc = seed_json
    facts = _facts(doc)
    outside = [row for row in facts.values() if not row["in_core"]]
    assert outside, "some offered fact is not needed for this invariant"
    for row in outside:
        dropped = row["dropped"]
        assert isinstance(dropped, dict)
        assert dropped["verdict"] == "holds", row["fact"]
        assert dropped["depth"] == 20 and dropped["trace"] == []
    # the kick keeps guests off obsolete roots; it is not what keeps SPTEs out of them
    assert facts["zap.request_kicks_guest"]["in_core"] is False


@pytest.mark.slow  # minutes: a long check (pytest -m slow, run by .ci/run)
def test_json_shape(seed_json: tuple[int, dict[str, object]]) -> None:
    _, doc = seed_json
    assert set(doc) >= {
        "variant",
        "spec",
        "config",
        "invariant",
        "method",
        "bound",
        "verdict",
        "base",
        "core",
        "facts",
        "seconds",
        "z3",
        "seed",
        "exit",
    }
    assert doc["method"] == "bmc" and doc["bound"] == 20 and doc["exit"] == 0
    assert doc["spec"] == "v5.16" and doc["invariant"] == SPTE
    base = doc["base"]
    assert isinstance(base, dict) and base["verdict"] == "holds"
    names = list(_facts(doc))
    assert names == list(offered_facts(make_variant("v5.16"), Config()))
    for row in _facts(doc).values():
        assert set(row) == {
            "fact",
            "meaning",
            "kernel",
            "when_dropped",
            "in_core",
            "necessary",
            "replaceable",
            "dropped",
        }
        dropped = row["dropped"]
        assert isinstance(dropped, dict)
        assert set(dropped) >= {"verdict", "depth", "trace", "exploits"}
        assert row["necessary"] == (dropped["verdict"] == "violated")
    # every fact named in the core is one the problem offers, in catalog order
    core = doc["core"]
    assert isinstance(core, list)
    assert core == [n for n in names if n in core]


@pytest.mark.slow  # minutes: a long check (pytest -m slow, run by .ci/run)
def test_sp_roots_alone_need_the_obsolete_test_not_the_request_test(sp_only: WhyResult) -> None:
    assert sp_only.verdict == "holds"
    by_name = {r.fact.name: r for r in sp_only.facts}
    assert by_name[REQUEST].in_core is False
    assert by_name[REQUEST].dropped.verdict == "holds"
    assert by_name[OBSOLETE_SP].in_core is True
    assert by_name[OBSOLETE_SP].dropped.verdict == "violated"
    assert by_name[OBSOLETE_SP].dropped.depth == 13
    text = report_text(sp_only)
    assert "VIOLATES no_spte_in_obsolete_root" in text
    assert f"without {OBSOLETE_SP}" in text
    assert report_json(sp_only)["exit"] == 0


def test_why_on_a_violated_invariant_reports_the_violation() -> None:
    status, text = _cli("why", "--preset", "paolo", "--invariant", SPTE)
    assert status == EXIT_VIOLATION
    assert f"{SPTE}: violated" in text and "violated in 13 steps" in text
    assert "VIOLATES no_spte_in_obsolete_root" in text
    status, text = _cli("why", "--preset", "paolo", "--invariant", SPTE, "--json")
    doc = json.loads(text)
    assert status == EXIT_VIOLATION and doc["exit"] == EXIT_VIOLATION
    assert doc["verdict"] == "violated" and doc["facts"] == [] and doc["core"] == []
    base = doc["base"]
    assert isinstance(base, dict) and base["depth"] == 13 and len(base["trace"]) == 13


def test_bad_input() -> None:
    status, _ = _cli("why", "--invariant", "no_such_invariant")
    assert status == EXIT_BAD_INPUT
    status, _ = _cli("why", "--invariant", SPTE, "--depth", "0")
    assert status == EXIT_BAD_INPUT


@pytest.mark.parametrize(
    ("preset", "vcpus", "notifier", "invariants"),
    [
        ("v5.16", ("special", "sp"), False, (SPTE, "no_guest_on_obsolete_root")),
        ("paolo", ("special", "sp"), False, (SPTE,)),
        ("v5.16-rc4", ("special",), False, ("no_null_deref", SPTE)),
        ("v5.18", ("tdp", "sp"), True, ("no_stale_pfn", "no_use_after_free")),
    ],
)
def test_every_fact_held_is_the_plain_model(
    preset: str, vcpus: tuple[str, ...], notifier: bool, invariants: tuple[str, ...]
) -> None:
    """The relaxed encoding with every literal true gives BMC's verdicts and lengths."""
    variant = make_variant(preset)
    config = Config(vcpus=vcpus, notifier=notifier)
    plain = {r.invariant: r for r in bmc(variant, config, invariants, depth=14)}
    for invariant in invariants:
        relaxed = check_dropped(variant, config, invariant, 14)
        assert relaxed.verdict == plain[invariant].verdict, invariant
        if relaxed.verdict == "violated":
            assert relaxed.depth == plain[invariant].depth
            assert relaxed.exploits == ()


def test_dropping_a_fact_is_the_variant_without_it() -> None:
    """Dropping the request test is Paolo's variant; dropping the zapper's unlock-free window
    is the knob ``zap.unlock_between_gen_and_request`` (the README's 11 steps)."""
    v516 = make_variant("v5.16")
    without_request = check_dropped(v516, Config(), SPTE, 16, [REQUEST])
    (paolo,) = bmc(make_variant("paolo"), Config(), [SPTE], depth=16)
    assert without_request.verdict == paolo.verdict == "violated"
    assert without_request.depth == paolo.depth == 13
    without_window = check_dropped(
        v516, Config(), SPTE, 16, ["zap.no_unlock_between_gen_and_request"]
    )
    unlocked = make_variant("v5.16", {"zap.unlock_between_gen_and_request": True})
    (knob,) = bmc(unlocked, Config(), [SPTE], depth=16)
    assert without_window.verdict == knob.verdict == "violated"
    assert without_window.depth == knob.depth == 11
    assert Step("zapper", "zap.unlock_mid") in without_window.trace


def test_offered_facts_follow_the_variant_and_configuration() -> None:
    assert REQUEST in offered_facts(make_variant("v5.16"), Config())
    assert REQUEST not in offered_facts(make_variant("paolo"), Config())
    assert OBSOLETE_SP not in offered_facts(make_variant("v5.15"), Config())
    assert "is_page_fault_stale.mmu_notifier" not in offered_facts(make_variant("v5.16"), Config())
    assert "is_page_fault_stale.mmu_notifier" in offered_facts(
        make_variant("v5.16"), Config(notifier=True)
    )
    assert "slots_lock.serializes_zaps" in offered_facts(make_variant("v5.16"), Config(zappers=2))
    assert not any(
        n.startswith("zap.") for n in offered_facts(make_variant("v5.16"), Config(zappers=0))
    )
    v518 = offered_facts(make_variant("v5.18"), Config())
    assert "kvm_mmu_free_obsolete_roots.drops_obsolete_root" in v518
    assert "kvm_mmu_unload.drops_root" not in v518
    for fact in FACTS.values():
        assert fact.meaning and fact.kernel and fact.dropped
    with pytest.raises(ValueError, match="not offered"):
        check_dropped(make_variant("paolo"), Config(), SPTE, 5, [REQUEST])


def test_relaxed_program_without_relaxation_is_the_program() -> None:
    """The program tree with nothing relaxed has the positions of section 6.3's program (for
    every knob setting but ``zap.yield``, whose program shares its tail)."""
    for knob in ("zap.request_before_gen", "zap.unlock_between_gen_and_request"):
        for value in KNOBS[knob]:
            knobs = Knobs.of(make_variant("v5.16", {knob: value}))
            plain, tree = zapper_program(knobs), relaxed_zapper_program(knobs, frozenset())
            assert (tree.positions, tree.holds_lock, tree.window) == (
                plain.positions,
                plain.holds_lock,
                plain.window,
            )
            assert not tree.needs


@pytest.mark.slow  # minutes: a long check (pytest -m slow, run by .ci/run)
def test_a_replaceable_fact_and_what_replaces_it() -> None:
    """Keeping guests off obsolete roots needs the entry check, the kick and the unload; the
    zapper's unlock-free window is in the minimal core, but dropping it alone holds: the
    generation-before-request order does its job (a kicked vCPU cannot re-enter on a root of
    the old generation). Dropping both breaks the invariant."""
    result = analyse(make_variant("v5.16"), Config(), "no_guest_on_obsolete_root", depth=20)
    by_name = {r.fact.name: r for r in result.facts}
    for needed in ("vcpu_enter_guest.request_check", "zap.request_kicks_guest"):
        assert by_name[needed].in_core and by_name[needed].necessary
    window = by_name["zap.no_unlock_between_gen_and_request"]
    assert window.in_core and window.replaceable
    assert not by_name["zap.gen_before_request"].in_core
    both = check_dropped(
        make_variant("v5.16"),
        Config(),
        "no_guest_on_obsolete_root",
        20,
        ["zap.no_unlock_between_gen_and_request", "zap.gen_before_request"],
    )
    assert both.verdict == "violated"
    assert "replaceable" in report_text(result)


@pytest.mark.slow  # minutes: a long check (pytest -m slow, run by .ci/run)
def test_the_readme_excerpt_is_a_real_run() -> None:
    """README's ``kvmmu why`` excerpt: the real output's lines, times aside, '...' for the
    counterexamples left out."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    command = "kvmmu why --preset v5.16 --invariant no_spte_in_obsolete_root"
    excerpt = readme.split(f"```\n$ {command}\n", 1)[1].split("\n```", 1)[0].splitlines()
    status, out = _cli(*command.split()[1:])
    real = out.splitlines()

    def timeless(lines: list[str]) -> list[str]:
        return [re.sub(r"\(\d+\.\d+ s\)", "(t s)", line) for line in lines]

    assert status == 0
    shown = [line for line in excerpt if line != "..."]
    assert all(line in timeless(real) for line in timeless(shown)), excerpt
    assert timeless(excerpt[: excerpt.index("...")]) == timeless(real[: excerpt.index("...")])
