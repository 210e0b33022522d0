"""The fuzz test of the input gate (``bench/fuzz.py``): a fixed seed, a fixed number of mutants of
the repository's own YAML files, each run through ``kvmmu.cli.main`` in this process. Every one
must end in exit 0 or 1, or in a clean one-line exit 2 naming its file: no traceback, no exit 3,
no hang (a mutant running past ``HANG_SECONDS`` is a finding, not a slow test).

The long run is a command: ``python -m bench.fuzz --seconds 600``."""

from __future__ import annotations

from pathlib import Path

from bench.fuzz import SEED, describe, fuzz, mutants, seeds

COUNT = 100  # about 8 s on an idle core, 20 s on a busy one


def test_every_kind_of_input_is_fuzzed() -> None:
    assert {s.kind for s in seeds()} == {"case", "obligations", "variant", "sweep"}
    first = [m.data for _, m in zip(range(20), mutants(SEED), strict=False)]
    again = [m.data for _, m in zip(range(20), mutants(SEED), strict=False)]
    assert first == again  # a seed names the same mutants everywhere


def test_fuzzed_inputs_keep_the_promise(tmp_path: Path) -> None:
    report = fuzz(tmp_path, seed=SEED, count=COUNT)
    assert report.runs == COUNT
    assert not report.findings, "\n".join(describe(f) for f in report.findings)
    assert set(report.statuses) <= {0, 1, 2}
    # the mutants reach both sides of the gate: refused ones, and accepted ones that ran
    assert report.statuses.get(2, 0) > COUNT // 2
    assert report.statuses.get(0, 0) + report.statuses.get(1, 0) > 0
