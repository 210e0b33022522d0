"""Bad input is rejected with the exact file, line and field (``FILE:LINE: FIELD: MESSAGE``).

Each fixture under ``tests/data/bad/`` has one mistake; the table says where it is and a part of
the message that a user needs to fix it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kvmmu.conformance.case import load_case
from kvmmu.yamlio import InputError, load_variant_file, load_yaml

BAD = Path(__file__).resolve().parent / "data" / "bad"

# file name -> (line, field, part of the message)
CASES: dict[str, tuple[int, str, str]] = {
    "unknown_top_key.yaml": (4, "speed", "unknown key"),
    "unknown_expect_key.yaml": (8, "expect.violations", "unknown key"),
    "unknown_actor.yaml": (6, "schedule[2]", "unknown actor 'cpu0'"),
    "actor_not_in_config.yaml": (9, "schedule[3]", "actor 'vcpu2' is not in the configuration"),
    "notifier_not_configured.yaml": (6, "schedule[2]", "actor 'notifier' is not in"),
    "unknown_step.yaml": (8, "schedule[4]", "vcpu0 has no step 'fault.mapp'"),
    "step_of_wrong_kind.yaml": (6, "schedule[2]", "zapper has no step 'fault.lock'"),
    "unknown_preset.yaml": (3, "variant", "unknown preset 'v5.17'"),
    "unknown_knob.yaml": (7, "variant.knobs.zap.yeild", "unknown knob 'zap.yeild'"),
    "bad_knob_value.yaml": (5, "variant.knobs.fault_lock", "takes one of auto, write, read"),
    "knob_value_quoted_bool.yaml": (5, "variant.knobs.zap.yield", "a quoted string"),
    "bad_type.yaml": (6, "config.zappers", "expected a whole number, got a string 'two'"),
    "syntax_error.yaml": (7, "(syntax)", "started on line 6"),
    "duplicate_key.yaml": (8, "schedule", "duplicate key (first given on line 4)"),
    "missing_required.yaml": (1, "(document)", "missing required key 'description'"),
    "bad_invariant.yaml": (8, "expect.violated.no_stale_spte", "unknown invariant"),
    "step_index_out_of_range.yaml": (
        9,
        "expect.violated.no_guest_on_obsolete_root",
        "step 3 is past the last executed step (2)",
    ),
    "blocked_not_last.yaml": (9, "expect.blocked", "must be the last schedule step (2)"),
    "unknown_state_path.yaml": (
        11,
        "expect.state[1].vcpu0.root.colour",
        "unknown vCPU state path 'root.colour'",
    ),
    "state_path_vcpu_not_in_config.yaml": (
        12,
        "expect.state[1].vcpu1.mode",
        "vcpu1 is not in the configuration",
    ),
    "bad_state_value.yaml": (10, "expect.state[1].vcpu0.mode", "got 'running'"),
    "probe_after_past_end.yaml": (9, "expect.not_enabled[1].after", "past the last executed"),
    "wrong_format.yaml": (1, "format", "unsupported format 'kvmmu-case/2'"),
    "unknown_cover_target.yaml": (8, "expect.covers[2]", "unknown cover target 'retry.stale'"),
}

VARIANT_CASES: dict[str, tuple[int, str, str]] = {
    "variant_unknown_knob.yaml": (5, "knobs.stale_check.obsolete", "unknown knob"),
    "variant_unknown_key.yaml": (2, "knob", "unknown key"),
}


def _expect_error(exc: InputError, path: Path, line: int, field: str, part: str) -> None:
    assert (exc.file, exc.line, exc.field) == (str(path), line, field), str(exc)
    assert part in exc.message, str(exc)
    assert str(exc) == f"{path}:{line}: {field}: {exc.message}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_case_is_rejected_with_its_position(name: str) -> None:
    line, field, part = CASES[name]
    path = BAD / name
    with pytest.raises(InputError) as info:
        load_case(path)
    _expect_error(info.value, path, line, field, part)


@pytest.mark.parametrize("name", sorted(VARIANT_CASES))
def test_bad_variant_file_is_rejected_with_its_position(name: str) -> None:
    line, field, part = VARIANT_CASES[name]
    path = BAD / name
    with pytest.raises(InputError) as info:
        load_variant_file(path)
    _expect_error(info.value, path, line, field, part)


def test_every_fixture_is_in_a_table() -> None:
    on_disk = {p.name for p in BAD.glob("*.yaml")}
    assert on_disk == set(CASES) | set(VARIANT_CASES)


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(InputError) as info:
        load_case(path)
    assert str(info.value).startswith(f"{path}:1: (document): cannot read")


def test_empty_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing here\n")
    with pytest.raises(InputError, match="the file is empty"):
        load_case(path)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- format\n- description\n")
    with pytest.raises(InputError) as info:
        load_case(path)
    assert str(info.value) == f"{path}:1: (document): expected a mapping, got a list"


def test_python_tags_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "tag.yaml"
    path.write_text("a: 1\nb: !!python/name:os.system\n")
    with pytest.raises(InputError) as info:
        load_yaml(path)
    assert (info.value.line, info.value.field) == (2, "b")


def test_duplicate_key_deep_inside(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(
        "expect:\n  state:\n    - after: 1\n      kvm.mmu_lock: free\n      kvm.mmu_lock: read\n"
    )
    with pytest.raises(InputError) as info:
        load_yaml(path)
    assert (info.value.line, info.value.field) == (5, "expect.state[1].kvm.mmu_lock")
