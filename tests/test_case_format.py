"""The case format: the corpus is well-formed (loader and JSON Schema agree), covers the whole
vocabulary, and the checker reports differences precisely. Engines here are fakes: the real ones
run through the pytest collection of ``conformance/cases`` (the root ``conftest.py``)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from kvmmu.conformance.case import Case, load_case
from kvmmu.conformance.check import check_case, compare, probes_for
from kvmmu.conformance.runner import LOAD, discover, run_cases, summary
from kvmmu.engine import Probes, Replay, StateValue, StepRecord
from kvmmu.vocab import (
    COVER_TARGETS,
    INVARIANTS,
    KNOBS,
    PRESETS,
    STEPS_BY_KIND,
    Config,
    Step,
    Variant,
    make_variant,
)
from kvmmu.yamlio import load_variant_file, load_yaml

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "conformance" / "cases"
SCHEMA = ROOT / "conformance" / "case.schema.json"
CASE_FILES = discover([CASES])
NO_PROBES = Probes()

# jsonschema ships no type stubs (types-jsonschema is not a project dependency): import it as a
# plain module, typed Any, so mypy is clean with or without the stubs installed.
jsonschema: Any = importlib.import_module("jsonschema")


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA.read_text())
    return schema


def _all_cases() -> list[Case]:
    return [load_case(path) for path in CASE_FILES]


# --- the corpus ----------------------------------------------------------------------------------


def test_there_are_enough_cases_in_topics() -> None:
    assert len(CASE_FILES) >= 32
    for path in CASE_FILES:
        assert path.parent.parent == CASES, f"{path}: cases live in conformance/cases/<topic>/"


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(_schema())


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_case_loads_and_matches_the_schema(path: Path) -> None:
    load_case(path)
    validator = jsonschema.Draft202012Validator(_schema())
    errors = [error.message for error in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


def test_case_ids_are_unique() -> None:
    ids = [path.stem for path in CASE_FILES]
    assert len(ids) == len(set(ids))


def test_schema_enums_follow_the_vocabulary() -> None:
    schema = _schema()
    expect = schema["properties"]["expect"]["properties"]
    assert set(expect["violated"]["properties"]) == set(INVARIANTS)
    assert expect["covers"]["items"]["enum"] == list(COVER_TARGETS)
    assert schema["$defs"]["preset"]["enum"] == list(PRESETS)
    knobs = schema["$defs"]["knobs"]["properties"]
    assert {name: tuple(k["enum"]) for name, k in knobs.items()} == dict(KNOBS)


def test_every_step_is_scheduled_somewhere() -> None:
    used = {step.name for case in _all_cases() for step in case.schedule}
    every = {name for steps in STEPS_BY_KIND.values() for name in steps}
    assert every - used == set()


def test_every_invariant_is_violated_somewhere_and_every_cover_is_expected() -> None:
    cases = _all_cases()
    violated = {name for case in cases for name in case.expect.violated}
    assert violated == set(INVARIANTS)
    covered = {target for case in cases for target in case.expect.covers}
    # retry.notifier and the others: each cover target is asserted by at least one case
    assert covered == set(COVER_TARGETS)


def test_every_knob_value_and_preset_is_used() -> None:
    cases = _all_cases()
    presets = {case.variant.name.split("+")[0] for case in cases}
    assert presets == set(PRESETS)
    used = {(knob, value) for case in cases for knob, value in case.variant.knobs.items()}
    every = {(knob, value) for knob, values in KNOBS.items() for value in values}
    assert every - used == set()


# --- the loader ----------------------------------------------------------------------------------


def test_field_lines_are_recorded(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("a:\n  b: 1\nlist:\n  - x\n  - y\n")
    doc = load_yaml(path)
    assert doc.data == {"a": {"b": 1}, "list": ["x", "y"]}
    assert doc.lines["a.b"] == 2
    assert doc.lines["list[2]"] == 5
    assert doc.line("a.missing") == 1  # a missing field is reported on its parent's line


def test_case_fields_are_parsed() -> None:
    case = load_case(CASES / "seed" / "paolo_special.yaml")
    assert case.id == "paolo_special"
    assert case.topic == "seed"
    assert case.variant == make_variant("paolo")
    assert case.config == Config(vcpus=("special",))
    assert case.schedule[12] == Step("vcpu0", "fault.map")
    assert case.expect.violated == {"no_spte_in_obsolete_root": 13}
    assert case.executed == len(case.schedule)


def test_variant_file(tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    path.write_text(
        "format: kvmmu-variant/1\nname: counter-18\ndescription: x\nbase: v5.18\n"
        "knobs:\n  generation: counter\n"
    )
    variant = load_variant_file(path)
    assert variant.name == "counter-18"
    assert variant["request"] == "free_obsolete"
    assert variant["generation"] == "counter"
    minimal = tmp_path / "m.yaml"
    minimal.write_text("knobs: {zap.yield: true}\n")
    assert load_variant_file(minimal).knobs == make_variant("v5.16", {"zap.yield": True}).knobs


# --- the checker, with a fake engine -------------------------------------------------------------


class FakeEngine:
    """Answers every replay with a fixed ``Replay``; records what it was asked."""

    def __init__(self, answer: Replay, name: str = "fake") -> None:
        self.name = name
        self.answer = answer
        self.asked: list[Probes] = []

    def replay(
        self,
        variant: Variant,
        config: Config,
        schedule: Sequence[Step],
        probes: Probes = NO_PROBES,
    ) -> Replay:
        self.asked.append(probes)
        return self.answer


def _replay(
    case: Case,
    first_violation: Mapping[str, int] | None = None,
    blocked: int | None = None,
    covers: Sequence[str] = (),
    state: Mapping[int, Mapping[str, StateValue]] | None = None,
    enabled: Mapping[int, Mapping[Step, bool]] | None = None,
) -> Replay:
    """The replay a correct engine would give, with the given answers."""
    ran = case.schedule if blocked is None else case.schedule[: blocked - 1]
    steps = [StepRecord(i + 1, step) for i, step in enumerate(ran)]
    if steps:
        steps[-1] = StepRecord(len(steps), ran[-1], covers=frozenset(covers))
    return Replay(tuple(steps), blocked, dict(first_violation or {}), state or {}, enabled or {})


def _paolo() -> Case:
    return load_case(CASES / "seed" / "paolo_special.yaml")


def _good_answers(
    case: Case,
) -> tuple[dict[int, dict[str, StateValue]], dict[int, dict[Step, bool]]]:
    state: dict[int, dict[str, StateValue]] = {}
    for check in case.expect.state:
        state.setdefault(check.after, {})[check.path] = check.value
    enabled: dict[int, dict[Step, bool]] = {}
    for probe in case.expect.enabled:
        enabled.setdefault(probe.after, {})[probe.step] = probe.enabled
    return state, enabled


def _correct(case: Case) -> Replay:
    state, enabled = _good_answers(case)
    return _replay(
        case,
        case.expect.violated,
        case.expect.blocked,
        case.expect.covers,
        state,
        enabled,
    )


def test_probes_ask_what_the_case_checks() -> None:
    case = _paolo()
    probes = probes_for(case)
    assert probes.state[13] == ("vcpu0.root.spte", "vcpu0.root.invalid", "vcpu0.root.obsolete")
    assert probes.enabled == {14: (Step("vcpu0", "vcpu.enter"),)}


def test_a_correct_replay_passes() -> None:
    case = _paolo()
    engine = FakeEngine(_correct(case))
    result = check_case(case, engine)
    assert result.passed, result.mismatches
    assert engine.asked == [probes_for(case)]


def test_violation_mismatches_are_readable() -> None:
    case = _paolo()
    state, enabled = _good_answers(case)
    never = _replay(case, {}, None, case.expect.covers, state, enabled)
    assert compare(case, never, "impl") == [
        "no_spte_in_obsolete_root: expected first violation at step 13 (vcpu0 fault.map), "
        "impl says never"
    ]
    extra = _replay(
        case,
        {"no_spte_in_obsolete_root": 12, "no_null_deref": 12},
        None,
        case.expect.covers,
        state,
        enabled,
    )
    assert compare(case, extra, "spec") == [
        "no_spte_in_obsolete_root: expected first violation at step 13 (vcpu0 fault.map), "
        "spec says step 12 (vcpu0 fault.check)",
        "no_null_deref: expected never, spec says step 12 (vcpu0 fault.check)",
    ]


def test_state_values_compare_strictly() -> None:
    case = _paolo()
    state, enabled = _good_answers(case)
    state[17]["vcpu0.root.gen"] = True  # a bool where an int is expected
    del state[13]["vcpu0.root.spte"]
    replay = _replay(case, case.expect.violated, None, case.expect.covers, state, enabled)
    assert compare(case, replay, "impl") == [
        "after 13 steps: vcpu0.root.spte: impl gave no answer",
        "after 17 steps: vcpu0.root.gen: expected 1, impl says true",
    ]


def test_enabled_blocked_and_cover_mismatches() -> None:
    case = _paolo()
    state, _ = _good_answers(case)
    enter = Step("vcpu0", "vcpu.enter")
    replay = _replay(case, case.expect.violated, None, ["fault.map"], state, {14: {enter: True}})
    assert compare(case, replay, "impl") == [
        "after 14 steps: expected 'vcpu0 vcpu.enter' not enabled, impl says enabled",
        "covers: expected zap.zap_obsolete to be reached, impl never reached it",
        "covers: expected enter.after_reload to be reached, impl never reached it",
    ]
    stopped = _replay(case, {}, 9, case.expect.covers, state, {})
    problems = compare(case, stopped, "impl")
    assert problems[0] == (
        "blocked: expected every step enabled, impl says step 9 (zapper zap.zap_obsolete) "
        "is not enabled (the replay stopped there)"
    )
    # probes past the stop are not reported one by one
    assert not any(p.startswith("after 13 steps") for p in problems)


def test_an_expected_block_that_does_not_happen() -> None:
    case = load_case(CASES / "steps" / "load_blocked_by_zapper.yaml")
    state, enabled = _good_answers(case)
    ran = _replay(case, {}, None, (), state, enabled)
    assert compare(case, ran, "spec") == [
        "blocked: expected step 2 (vcpu0 vcpu.load) not enabled, spec ran it"
    ]


# --- the runner ----------------------------------------------------------------------------------


def test_discover_sorts_deduplicates_and_refuses_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.yaml").write_text("x: 1\n")
    (tmp_path / "a.yaml").write_text("x: 1\n")
    (tmp_path / "notes.txt").write_text("x\n")
    found = discover([tmp_path, tmp_path / "a.yaml"])
    assert found == [tmp_path / "a.yaml", tmp_path / "b" / "z.yaml"]
    with pytest.raises(FileNotFoundError):
        discover([tmp_path / "missing"])


def test_run_cases_reports_load_errors_and_engine_errors(tmp_path: Path) -> None:
    good = CASES / "seed" / "paolo_special.yaml"
    broken = tmp_path / "broken.yaml"
    broken.write_text("format: kvmmu-case/1\n")
    case = load_case(good)

    class Raising(FakeEngine):
        def replay(
            self,
            variant: Variant,
            config: Config,
            schedule: Sequence[Step],
            probes: Probes = NO_PROBES,
        ) -> Replay:
            raise RuntimeError("boom")

    engines = [FakeEngine(_correct(case), "impl"), Raising(_correct(case), "spec")]
    # cases run in path order, and where tmp_path sorts against the repository varies
    results = sorted(run_cases([good, broken], engines), key=lambda r: (r.case_id, r.engine))
    assert [(r.case_id, r.engine, r.passed) for r in results] == [
        ("broken", LOAD, False),
        ("paolo_special", "impl", True),
        ("paolo_special", "spec", False),
    ]
    assert results[0].error is not None and "missing required key" in results[0].error
    assert results[2].error == "RuntimeError: boom"
    text = summary(results)
    assert text.endswith("2 cases, 3 results: 1 passed, 2 failed")


# --- the pytest collection (root conftest.py) ----------------------------------------------------


def test_cases_are_collected_once_per_engine() -> None:
    target = "conformance/cases/seed/paolo_special.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-o", "addopts=", "-q", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert f"{target}::impl" in result.stdout, result.stdout + result.stderr
    assert f"{target}::spec" in result.stdout, result.stdout + result.stderr
