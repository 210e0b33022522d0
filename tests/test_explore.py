"""``kvmmu explore``: the sweep agrees with the proof obligations, runs the same with any number
of jobs (and on Dask), and rejects bad sweep files with the file, the line and the field."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from pathlib import Path

import pytest

from kvmmu import explore as ex
from kvmmu.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_UNKNOWN, main
from kvmmu.obligations import Obligation, load_manifest
from kvmmu.prover import Verdict
from kvmmu.vocab import INVARIANTS, KNOBS, PRESETS, Config, make_variant
from kvmmu.yamlio import InputError

ROOT = Path(__file__).resolve().parent.parent
SMALL_BMC = ex.make_sweep(
    [make_variant("paolo"), make_variant("v5.16")],
    [Config()],
    ["no_spte_in_obsolete_root", "no_guest_on_obsolete_root"],
    engine="bmc",
    bound=14,
)


def signature(exploration: ex.Exploration) -> list[list[tuple[str, tuple[str, ...]]]]:
    """What must not depend on how the cells ran: every verdict and trace, in order."""
    return [
        [(r.verdict.verdict, tuple(map(str, r.verdict.trace))) for r in row]
        for row in exploration.results
    ]


# --- the sweep agrees with proofs/ ---------------------------------------------------------------


def _groups() -> dict[tuple[Config, str], list[Obligation]]:
    """The small obligations of proofs/ on invariants (explore's columns; the liveness
    properties are not), by configuration and invariant."""
    groups: dict[tuple[Config, str], list[Obligation]] = defaultdict(list)
    for ob in load_manifest([ROOT / "proofs"]):
        if ob.klass == "small" and not ob.liveness:
            groups[(ob.config, ob.invariant)].append(ob)
    return groups


def compatible(expect: str, length: int | None, verdict: Verdict) -> bool:
    """A k-induction verdict against an obligation's expectation: a proof for all depths also
    holds to any depth; a violation is a shortest one, so its length must match."""
    if expect == "violated":
        return verdict.verdict == "violated" and length in (None, len(verdict.trace))
    if expect == "holds":
        return verdict.verdict in ("proved", "holds")
    return verdict.verdict == expect


@pytest.mark.slow  # minutes: a long check (pytest -m slow, run by .ci/run)
def test_the_sweep_gives_the_verdicts_the_obligations_expect() -> None:
    """For each configuration and invariant of proofs/, sweep the variants that have an
    obligation there with the default engine (k-induction) and compare each cell."""
    groups = _groups()
    assert len(groups) >= 5
    checked = 0
    for (config, invariant), obligations in groups.items():
        variants = list({ob.variant.name: ob.variant for ob in obligations}.values())
        sweep = ex.make_sweep(variants, [config], [invariant])
        exploration = ex.explore(sweep, jobs=2)
        cells = {row.variant.name: result for row, _, result in exploration.cells()}
        for ob in obligations:
            verdict = cells[ob.variant.name].verdict
            assert compatible(ob.expect, ob.length, verdict), (ob.id, verdict)
            checked += 1
    assert checked == sum(len(obs) for obs in groups.values())


# --- building sweeps -----------------------------------------------------------------------------


def test_vary_is_a_cartesian_product_on_top_of_each_preset() -> None:
    vary = [("stale_check.reload_request", KNOBS["stale_check.reload_request"])]
    vary.append(("zap.yield", (False, True)))
    variants = ex.expand_variants([make_variant("v5.16"), make_variant("paolo")], {}, vary)
    assert len(variants) == 2 * 3 * 2
    assert variants[0].name == "v5.16+stale_check.reload_request=test,zap.yield=false"
    assert variants[1].name == "v5.16+stale_check.reload_request=test,zap.yield=true"
    assert variants[-1]["stale_check.obsolete_sp"] == "guarded"
    assert variants[-1]["stale_check.reload_request"] == "check"
    fixed = ex.expand_variants([make_variant("v5.16")], {"request": "free_obsolete"}, vary[1:])
    assert all(v["request"] == "free_obsolete" for v in fixed)
    with pytest.raises(ValueError, match="both fixed and varied"):
        ex.expand_variants([make_variant("v5.16")], {"zap.yield": True}, vary[1:])


def test_rows_are_variants_times_configurations() -> None:
    configs = [Config(vcpus=("special",)), Config(vcpus=("sp",))]
    sweep = ex.make_sweep([make_variant(p) for p in PRESETS], configs)
    assert len(sweep.rows) == 2 * len(PRESETS)
    assert sweep.configs == tuple(configs)
    assert sweep.invariants == INVARIANTS and sweep.engine == "kind" and sweep.bound == 30
    cells = sweep.cells()
    assert len(cells) == len(sweep.rows) * len(INVARIANTS)
    assert [(c.row, c.column) for c in cells[:6]] == [(0, i) for i in range(5)] + [(1, 0)]


# --- running: jobs, Dask, exit status, progress ---------------------------------------------------


@pytest.fixture(scope="module")
def sequential() -> ex.Exploration:
    return ex.explore(SMALL_BMC, jobs=1)


@pytest.mark.slow  # minutes: a long check (pytest -m slow, run by .ci/run)
def test_results_do_not_depend_on_the_number_of_jobs(sequential: ex.Exploration) -> None:
    parallel = ex.explore(SMALL_BMC, jobs=3)
    assert signature(parallel) == signature(sequential)
    assert sequential.results[0][0].verdict.verdict == "violated"
    assert len(sequential.results[0][0].verdict.trace) == 13
    assert sequential.exit_status == 0
    assert parallel.workers == "3 jobs"


@pytest.mark.slow  # minutes: a long check (pytest -m slow, run by .ci/run)
def test_dask_runs_the_same_cells(sequential: ex.Exploration) -> None:
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    )
    with cluster:
        on_dask = ex.explore(SMALL_BMC, dask_address=cluster.scheduler_address)
    assert signature(on_dask) == signature(sequential)
    assert on_dask.workers.startswith("dask ")


def test_a_failing_cell_is_an_error_and_exit_3(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> list[Verdict]:
        raise RuntimeError("solver exploded")

    monkeypatch.setattr(ex, "check", broken)
    sweep = ex.make_sweep([make_variant("v5.16")], [Config()], ["no_null_deref"])
    exploration = ex.explore(sweep, jobs=1)
    (result,) = exploration.results[0]
    assert result.verdict.verdict == "error" and "solver exploded" in result.verdict.reason
    assert exploration.exit_status == EXIT_UNKNOWN
    assert "solver exploded" in ex.matrix_text(exploration)


def test_progress_bar_estimates_the_time_left() -> None:
    stream = io.StringIO()
    bar = ex.ProgressBar(stream, width=10)
    bar(0, 4)
    bar(2, 4)
    bar(4, 4)
    text = stream.getvalue()
    assert "[#####.....] 2/4 cells" in text and "left" in text
    assert text.endswith("\n") and "[##########] 4/4 cells" in text


# --- outputs -------------------------------------------------------------------------------------


def test_cell_texts() -> None:
    def verdict(v: str, **more: object) -> Verdict:
        return Verdict("no_null_deref", v, "kind", 30, 0.1, **more)  # type: ignore[arg-type]

    full = {"fault.map": True, "retry.obsolete": False}
    required = frozenset(full)
    assert ex.cell_text(verdict("proved", k=1)) == "proved"
    assert ex.cell_text(verdict("holds")) == "holds to 30"
    assert ex.cell_text(verdict("not_inductive")) == "not inductive"
    assert ex.cell_text(verdict("vacuous", cover=full, required=required)) == (
        "vacuous: no retry.obsolete"
    )
    assert ex.cell_text(verdict("unknown")) == "unknown"


def test_json_markdown_and_text(sequential: ex.Exploration) -> None:
    doc = json.loads(ex.dumps_json(sequential))
    assert doc["format"] == "kvmmu-explore/1" and doc["exit"] == 0
    assert doc["invariants"] == ["no_spte_in_obsolete_root", "no_guest_on_obsolete_root"]
    assert [row["label"] for row in doc["rows"]] == ["paolo", "v5.16"]
    cell = doc["rows"][0]["cells"][0]
    assert (
        cell["verdict"] == "violated" and cell["depth"] == 13 and cell["text"] == ("violated in 13")
    )
    assert cell["command"].startswith("kvmmu prove --preset paolo")
    assert doc["counts"] == {"holds": 3, "violated": 1}
    markdown = ex.matrix_markdown(sequential)
    assert "| `paolo` | **violated in 13** | holds to 14 |" in markdown
    assert "13. `vcpu0 fault.map`" in markdown
    text = ex.matrix_text(sequential)
    assert "paolo    violated in 13" in text
    assert "4 cells (2 rows x 2 invariants): 3 holds, 1 violated" in text


def test_cli_explore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    html = tmp_path / "r.html"
    argv = ["explore", "--preset", "paolo", "--vary", "zap.yield=false", "--engine", "bmc"]
    argv += ["--depth", "14", "--invariant", "no_spte_in_obsolete_root", "--jobs", "1"]
    assert main([*argv, "--json", "--html", str(html)]) == EXIT_OK
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert doc["rows"][0]["label"] == "paolo+zap.yield=false"
    assert doc["rows"][0]["cells"][0]["text"] == "violated in 13"
    assert f"wrote {html}" in out.err and "<svg" in html.read_text()
    assert main([*argv, "--format", "markdown"]) == EXIT_OK
    assert "**violated in 13**" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sweep", "x.yaml", "--preset", "paolo"], "drop --preset"),
        (["--all-presets", "--preset", "paolo"], "not both"),
        (["--preset", "v9"], "unknown preset"),
        (["--vary", "zap.nope"], "unknown knob"),
        (["--vary", "zap.yield=perhaps"], "takes one of"),
        (["--depth", "5"], "--max-k"),
        (["--engine", "bmc", "--max-k", "5"], "--depth"),
        (["--vcpus", "special,gpu"], "unknown root kind"),
        (["--invariant", "no_bugs"], "unknown invariant"),
        (["--json", "--format", "markdown"], "not both"),
        (["--jobs", "0"], "from 1 to"),
    ],
)
def test_cli_bad_input(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", *argv]) == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err


# --- sweep files ---------------------------------------------------------------------------------

GOOD = """\
format: kvmmu-sweep/1
description: the request check, with and without a yielding zapper
presets: [v5.16, paolo]
variants:
  - {base: v5.16, knobs: {stale_check.request_before_lock: true}}
knobs: {zap.serialized: true}
vary:
  zap.yield: [false, true]
configs:
  - {vcpus: [special, sp], notifier: true}
  - {vcpus: [special]}
invariants: [no_spte_in_obsolete_root]
engine: bmc
bound: 14
timeout: 60
"""


def test_a_sweep_file(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(GOOD)
    sweep = ex.load_sweep(path)
    assert len(sweep.rows) == 3 * 2 * 2
    assert sweep.rows[0].variant.name == "v5.16+zap.serialized=true,zap.yield=false"
    assert sweep.rows[0].config.notifier and sweep.rows[1].config.vcpus == ("special",)
    assert sweep.invariants == ("no_spte_in_obsolete_root",)
    assert (sweep.engine, sweep.bound, sweep.timeout_s) == ("bmc", 14, 60.0)
    assert sweep.description.startswith("the request check")
    minimal = tmp_path / "all.yaml"
    minimal.write_text("format: kvmmu-sweep/1\npresets: all\nvary: [zap.yield]\n")
    sweep = ex.load_sweep(minimal)
    assert len(sweep.rows) == 2 * len(PRESETS) and sweep.engine == "kind"


def test_cli_runs_a_sweep_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "format: kvmmu-sweep/1\npresets: [paolo]\ninvariants: [no_spte_in_obsolete_root]\n"
        "engine: bmc\nbound: 14\n"
    )
    assert main(["explore", "--sweep", str(path), "--jobs", "1"]) == EXIT_OK
    assert "paolo    violated in 13" in capsys.readouterr().out


BAD = [
    ("format: kvmmu-sweep/2\npresets: all\n", 1, "format", "unsupported format"),
    ("format: kvmmu-sweep/1\npresets: all\nrows: 3\n", 3, "rows", "unknown key"),
    ("format: kvmmu-sweep/1\n", 1, "(document)", "no variants"),
    ("format: kvmmu-sweep/1\npresets:\n  - v5.16\n  - v9\n", 4, "presets[2]", "unknown preset"),
    (
        "format: kvmmu-sweep/1\npresets: all\nknobs:\n  zap.yield: maybe\n",
        4,
        "knobs.zap.yield",
        "takes one of",
    ),
    (
        "format: kvmmu-sweep/1\npresets: all\nvary:\n  - zap.yield\n  - zap.nope\n",
        5,
        "vary[2]",
        "unknown knob",
    ),
    (
        "format: kvmmu-sweep/1\npresets: all\nvary:\n  zap.yield: [true, 'yes']\n",
        4,
        "vary.zap.yield[2]",
        "takes one of",
    ),
    (
        "format: kvmmu-sweep/1\npresets: all\nknobs: {zap.yield: true}\nvary: [zap.yield]\n",
        3,
        "knobs.zap.yield",
        "both fixed and varied",
    ),
    (
        "format: kvmmu-sweep/1\npresets: all\nconfigs:\n  - {vcpus: [special]}\n"
        "  - {vcpus: [sp, gpu]}\n",
        5,
        "configs[2].vcpus[2]",
        "unknown root kind",
    ),
    (
        "format: kvmmu-sweep/1\npresets: all\nconfigs:\n  - {notifier: 1}\n",
        4,
        "configs[1].notifier",
        "expected true or false",
    ),
    (
        "format: kvmmu-sweep/1\npresets: all\ninvariants: [no_spte_in_obsolete_root, no_bug]\n",
        3,
        "invariants[2]",
        "unknown invariant",
    ),
    ("format: kvmmu-sweep/1\npresets: all\nengine: tlc\n", 3, "engine", "expected one of"),
    ("format: kvmmu-sweep/1\npresets: all\nbound: 0\n", 3, "bound", ">= 1"),
    ("format: kvmmu-sweep/1\npresets: all\ntimeout: -1\n", 3, "timeout", "positive number"),
    (
        "format: kvmmu-sweep/1\nvariants:\n  - {base: paolo, knob: {zap.yield: true}}\n",
        3,
        "variants[1].knob",
        "unknown key",
    ),
    ("format: kvmmu-sweep/1\npresets: [v5.16\n", 3, "(syntax)", "invalid YAML"),
]


@pytest.mark.parametrize(("text", "line", "field", "message"), BAD, ids=[b[2] for b in BAD])
def test_bad_sweep_files_name_the_line_and_field(
    tmp_path: Path, text: str, line: int, field: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        ex.load_sweep(path)
    err = caught.value
    assert (err.file, err.line, err.field) == (str(path), line, field), str(err)
    assert message in err.message


def test_a_bad_sweep_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("format: kvmmu-sweep/1\npresets: all\nengine: tlc\n")
    assert main(["explore", "--sweep", str(path)]) == EXIT_BAD_INPUT
    assert f"{path}:3: engine: expected one of" in capsys.readouterr().err
