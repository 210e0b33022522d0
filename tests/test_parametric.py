"""Parametric proofs (spec.parametric): the invariants for any number of vCPUs by the
distinguished-vCPU abstraction, the concrete confirmation of its violations, the cross-check
against the concrete k-induction for 1 to 3 vCPUs (4 in ``--cross-check 4``, see
docs/parametric.md), the simulation on random concrete traces, and the environment's
non-vacuity."""

from __future__ import annotations

import json

import pytest

import spec.parametric as parametric
from impl import ImplEngine, random_trace
from kvmmu.cli.parametric import main
from kvmmu.engine import Probes
from kvmmu.vocab import COVER_TARGETS, Config, Step, make_variant
from spec import SpecEngine
from spec.parametric import (
    ENV,
    ENV_BLOCKS,
    MAIN_INVARIANTS,
    ParametricResult,
    abstract_replay,
    check_simulation,
    concrete_config,
    cross_check,
    env_blocks_fault_lock,
    env_only_blocks,
    make_abstraction,
    project,
    prove_parametric,
    render,
    witness,
)
from spec.state import State
from spec.steps import is_choice

V516 = make_variant("v5.16")
PAOLO = make_variant("paolo")


def _results(variant_name: str) -> dict[str, ParametricResult]:
    return {
        name: prove_parametric(variant_name, name, max_k=4, timeout_s=120)
        for name in MAIN_INVARIANTS
    }


@pytest.fixture(scope="module")
def v516() -> dict[str, ParametricResult]:
    return _results("v5.16")


@pytest.fixture(scope="module")
def paolo() -> dict[str, ParametricResult]:
    return _results("paolo")


@pytest.mark.slow  # minutes: a long check (pytest -m slow, run by .ci/run)
def test_v5_16_keeps_the_main_invariants_for_any_number_of_vcpus(
    v516: dict[str, ParametricResult],
) -> None:
    for name, r in v516.items():
        assert r.verdict == "proved", render(r)
        assert r.kinds == ("special", "sp", "tdp")
        assert [x.kind for x in r.per_kind] == ["special", "sp", "tdp"]
        assert all(x.verdict == "proved" and 1 <= x.k <= 4 for x in r.per_kind), name
        # non-vacuous: the distinguished vCPU maps, retries, enters after a reload, and the
        # environment's lock really blocks it
        assert all(r.cover[t] is True for t in COVER_TARGETS), r.cover
        assert r.cover[ENV_BLOCKS] is True
        assert r.trace == () and r.confirmation is None and r.z3_version
    spte = v516["no_spte_in_obsolete_root"]
    # the special root's safety rests on the reload request, for any N as for two vCPUs
    assert "special:request_coverage[vcpu0]" in spte.lemmas, spte.lemmas
    assert "special:map_root_fresh[vcpu0]" in spte.lemmas


@pytest.mark.slow  # minutes: a long check (pytest -m slow, run by .ci/run)
def test_paolo_violation_is_confirmed_concretely(paolo: dict[str, ParametricResult]) -> None:
    spte = paolo["no_spte_in_obsolete_root"]
    assert spte.verdict == "violated", render(spte)
    assert spte.per_kind[0].kind == "special" and spte.per_kind[0].verdict == "violated"
    assert len(spte.trace) == spte.k == 13
    assert spte.trace[-1] == Step("vcpu0", "fault.map")
    conf = spte.confirmation
    assert conf is not None and conf.confirmed
    assert conf.vcpus == ("special",) and conf.length == 13
    # the abstract trace has no environment step: it is a concrete one-vCPU trace as it stands
    assert all(x.actor != ENV for x in spte.trace)
    replay = SpecEngine().replay(PAOLO, concrete_config(1), spte.trace)
    assert replay.first_violation.get("no_spte_in_obsolete_root") == 13
    for name in MAIN_INVARIANTS[1:]:
        assert paolo[name].verdict == "proved", render(paolo[name])


@pytest.mark.slow  # minutes: a long check (pytest -m slow, run by .ci/run)
@pytest.mark.parametrize("variant_name", ["v5.16", "paolo"])
def test_cross_check_against_concrete_k_induction_for_1_to_3_vcpus(
    variant_name: str,
    v516: dict[str, ParametricResult],
    paolo: dict[str, ParametricResult],
) -> None:
    results = v516 if variant_name == "v5.16" else paolo
    verdicts = {name: r.verdict for name, r in results.items()}
    variant = make_variant(variant_name)
    for check in cross_check(variant, MAIN_INVARIANTS, verdicts, max_vcpus=3, timeout_s=120):
        assert check.agrees, check.as_dict()
        assert sorted(check.concrete) == [1, 2, 3]


def test_the_environment_can_only_block() -> None:
    # no step of d, a zapper or the notifier reads the environment but to be disabled by it
    for name in ("v5.16", "paolo", "v5.16-rc4", "v5.18", "lai"):
        for kind in ("special", "sp", "tdp"):
            assert env_only_blocks(make_abstraction(make_variant(name), kind)), (name, kind)


@pytest.mark.parametrize("variant_name", ["v5.16", "paolo"])
def test_every_concrete_step_is_an_abstract_step_or_a_stutter(variant_name: str) -> None:
    # symbolically, from every state: d of each kind, with up to two other vCPUs
    variant = make_variant(variant_name)
    for kind in ("special", "sp", "tdp"):
        for others in [("sp", "tdp"), ("tdp", "tdp")]:  # a writer and a reader; two readers
            assert check_simulation(variant, kind, others), (kind, others)


def test_the_simulation_check_catches_a_too_weak_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # an environment that never reads-locks cannot simulate a TDP vCPU's fault.lock
    real = parametric.make_abstraction

    def sp_only(*args: object) -> parametric.Abstraction:
        variant, kind, _, zappers, notifier = args
        return real(variant, kind, ("sp",), zappers, notifier)  # type: ignore[arg-type]

    monkeypatch.setattr(parametric, "make_abstraction", sp_only)
    assert not check_simulation(V516, "sp", ("tdp",))


def test_the_environment_is_not_vacuous() -> None:
    a = make_abstraction(V516, "sp", env_kinds=("sp",))
    mapped = a.layout.code(Step("vcpu0", "fault.map"))
    assert mapped is not None

    def maps(s: State, c: object, t: State) -> object:
        return is_choice(a.layout, c, mapped)

    trace = witness(a, [env_blocks_fault_lock(a), maps], depth=12)
    assert trace is not None
    assert Step(ENV, "lock.write") in trace and Step(ENV, "unlock.write") in trace
    # the environment's writer keeps d at fault.lock until it lets go
    held = trace.index(Step(ENV, "lock.write"))
    released = trace.index(Step(ENV, "unlock.write"))
    assert held < released < trace.index(Step("vcpu0", "fault.lock"))
    blocked = [*trace[: trace.index(Step("vcpu0", "fault.lock"))], Step("vcpu0", "fault.lock")]
    blocked.remove(Step(ENV, "unlock.write"))
    assert abstract_replay(a, blocked) is None
    # sp-only other vCPUs never take mmu_lock for read
    assert abstract_replay(a, [Step(ENV, "lock.read")]) is None
    assert abstract_replay(make_abstraction(V516, "sp"), [Step(ENV, "lock.read")]) is not None


COMPARED = ("mode", "request", "unload_due", "root.loaded", "root.obsolete", "root.invalid")


@pytest.mark.parametrize("seed", [2, 5])  # seeds whose walks take mmu_lock
def test_every_vcpu_of_a_random_concrete_trace_is_simulated(seed: int) -> None:
    # the simulation of docs/parametric.md, on traces of the independent implementation: the
    # projection on each vCPU runs in the abstraction, ending in the same state for that vCPU
    config = Config(("special", "sp", "tdp"), 1, True, None, None)
    trace = random_trace(V516, config, seed, 40)
    paths = (*(f"vcpu{u}.{p}" for u in range(3) for p in COMPARED), "kvm.mmu_lock")
    concrete = ImplEngine().replay(V516, config, trace, Probes(state={len(trace): paths}))
    assert concrete.blocked is None
    end = concrete.state[len(trace)]
    env_steps = 0
    for u, kind in enumerate(config.vcpus):
        steps = project(V516, config, trace, u)
        env_steps += sum(1 for x in steps if x.actor == ENV)
        final = abstract_replay(make_abstraction(V516, kind), steps)
        assert final is not None, (u, steps)
        assert final["kvm.mmu_lock"] == end["kvm.mmu_lock"]
        for p in COMPARED:
            assert final[f"vcpu0.{p}"] == end[f"vcpu{u}.{p}"], (u, p)
    assert env_steps > 0


def test_bad_input_is_an_error_and_the_command_line_is_clean(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert prove_parametric("v5.16", "no_such_invariant").verdict == "error"
    assert prove_parametric("v5.16", "no_stale_pfn", kinds=("ept",)).verdict == "error"
    assert prove_parametric("nope", "no_stale_pfn").verdict == "error"
    assert main(["--preset", "nope"]) == 2
    assert main(["--invariant", "nope"]) == 2
    assert main(["--knob", "zap.yield=maybe"]) == 2
    err = capsys.readouterr().err
    assert err and all(line.startswith("kvmmu parametric: ") for line in err.splitlines())
    status = main(["--invariant", "no_spte_in_obsolete_root", "--json", "--max-k", "3"])
    out = json.loads(capsys.readouterr().out)
    assert status == 0 and out["exit"] == 0
    assert out["results"][0]["verdict"] == "proved"
    assert [x["kind"] for x in out["results"][0]["per_kind"]] == ["special", "sp", "tdp"]


def test_paolo_violation_on_one_kind_is_confirmed_and_labelled_as_a_length() -> None:
    # the fast counterpart of the slow paolo test: one kind of d, a small max_k
    r = prove_parametric("paolo", "no_spte_in_obsolete_root", kinds=("special",), max_k=2)
    assert r.verdict == "violated" and r.confirmation is not None and r.confirmation.confirmed
    assert len(r.trace) == 13 and r.confirmation.length == 13
    assert "length 13" in render(r) and " k " not in render(r).splitlines()[0]
