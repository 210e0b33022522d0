"""ITF output (``--itf`` on ``prove`` and ``search``): every trace validates against the JSON
Schema of ADR-015 (``tests/data/itf.schema.json``) and says what the engine replayed."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from kvmmu.cli import EXIT_BAD_INPUT, EXIT_VIOLATION, main
from kvmmu.itf import itf_path, trace_document
from kvmmu.render import replay_states
from kvmmu.vocab import Config, Problem, make_variant
from spec import SpecEngine, bmc

# jsonschema ships no type stubs (as in test_case_format): import it as a module of type Any
jsonschema: Any = importlib.import_module("jsonschema")
SCHEMA = json.loads((Path(__file__).parent / "data" / "itf.schema.json").read_text())
jsonschema.Draft202012Validator.check_schema(SCHEMA)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def check_itf(doc: Any) -> None:
    """The schema, and what a schema cannot say: every state defines every variable, the
    indices count from 0, and every integer is a ``#bigint`` (kvmmu's choice)."""
    errors = sorted(VALIDATOR.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    for i, state in enumerate(doc["states"]):
        assert set(state) - {"#meta"} == set(doc["vars"]), i
        assert state["#meta"]["index"] == i

    def no_plain_int(value: object) -> None:
        assert not (isinstance(value, int) and not isinstance(value, bool)), value
        if isinstance(value, dict):
            for v in value.values():
                no_plain_int(v)
        elif isinstance(value, list):
            for v in value:
                no_plain_int(v)

    for state in doc["states"]:
        no_plain_int({k: v for k, v in state.items() if k != "#meta"})


PAOLO = Problem(make_variant("paolo"), Config())


@pytest.fixture(scope="module")
def paolo_doc() -> dict[str, object]:
    (result,) = bmc(PAOLO.variant, PAOLO.config, ["no_spte_in_obsolete_root"], 14, 60.0)
    assert result.verdict == "violated"
    replay, states = replay_states(SpecEngine(), PAOLO, result.trace)
    return trace_document(
        PAOLO,
        result.trace,
        states,
        replay,
        invariant="no_spte_in_obsolete_root",
        source="kvmmu (spec engine)",
    )


def test_a_counterexample_is_valid_itf(paolo_doc: dict[str, Any]) -> None:
    check_itf(paolo_doc)
    assert paolo_doc["vars"] == ["action", "kvm", "vcpu0", "vcpu1"]
    meta = paolo_doc["#meta"]
    assert meta["format"] == "ITF" and meta["invariant"] == "no_spte_in_obsolete_root"
    assert meta["first_violation"] == 13 and meta["variant"] == "paolo"


def test_the_states_are_the_replayed_ones(paolo_doc: dict[str, Any]) -> None:
    states = paolo_doc["states"]
    assert len(states) == 14
    assert states[0]["action"] == "init"
    assert states[0]["vcpu0"]["root"] == {"tag": "None", "value": {"#tup": []}}
    last = states[-1]
    assert last["action"] == "vcpu0 fault.map"
    assert last["#meta"]["violations"] == ["no_spte_in_obsolete_root"]
    root = last["vcpu0"]["root"]
    assert root["tag"] == "Some"
    # Sean's point: an SPTE installed under an obsolete (and invalid) special root
    assert root["value"]["obsolete"] and root["value"]["invalid"] and root["value"]["spte"]
    assert last["vcpu0"]["kind"] == "special"
    assert last["kvm"]["mmu_valid_gen"] == {"#bigint": "1"}


def test_the_schema_rejects_what_itf_does_not_allow(paolo_doc: dict[str, Any]) -> None:
    bad_null = json.loads(json.dumps(paolo_doc))
    bad_null["states"][0]["kvm"]["mmu_lock"] = None
    bad_bigint = json.loads(json.dumps(paolo_doc))
    bad_bigint["states"][0]["kvm"]["mmu_valid_gen"] = {"#bigint": "one"}
    no_vars = {k: v for k, v in paolo_doc.items() if k != "vars"}
    for doc in (bad_null, bad_bigint, no_vars):
        assert not VALIDATOR.is_valid(doc)


def test_prove_writes_itf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "paolo.itf.json"
    argv = ["prove", "--preset", "paolo", "--invariant", "no_spte_in_obsolete_root"]
    status = main([*argv, "--depth", "14", "--itf", str(out), "--json"])
    assert status == EXIT_VIOLATION
    json.loads(capsys.readouterr().out)  # stdout stays one JSON object
    doc = json.loads(out.read_text())
    check_itf(doc)
    assert doc["#meta"]["source"] == "kvmmu (spec engine)"
    assert len(doc["states"]) == 14


def test_search_writes_one_itf_per_violated_invariant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "rc4.itf.json"
    argv = ["search", "--preset", "v5.16-rc4", "--notifier", "--max-depth", "12"]
    argv += ["--invariant", "no_null_deref", "--invariant", "no_stale_pfn"]
    argv += ["--knob", "stale_check.mmu_notifier=false", "--itf", str(base)]
    assert main(argv) == EXIT_VIOLATION
    capsys.readouterr()
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["rc4-no_null_deref.itf.json", "rc4-no_stale_pfn.itf.json"]
    for name in written:
        doc = json.loads((tmp_path / name).read_text())
        check_itf(doc)
        assert doc["#meta"]["source"] == "kvmmu (impl engine)"
    crash = json.loads((tmp_path / "rc4-no_null_deref.itf.json").read_text())
    assert crash["states"][-1]["vcpu0"]["mode"] == "crashed"


def test_itf_paths() -> None:
    base = Path("out/x.itf.json")
    assert itf_path(base, "no_stale_pfn", False) == base
    assert itf_path(base, "no_stale_pfn", True) == Path("out/x-no_stale_pfn.itf.json")
    assert itf_path(Path("t.json"), "a", True) == Path("t-a.json")
    assert itf_path(Path("t"), "a", True) == Path("t-a.itf.json")


def test_itf_with_obligation_files_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", "proofs/", "--itf", "x.itf.json"]) == EXIT_BAD_INPUT
    assert "--itf" in capsys.readouterr().err
