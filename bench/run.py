"""The benchmark suite: ``python -m bench [--quick] [--out docs/performance.md]`` (``--quick``
writes ``build/bench-quick/``, never the committed ``docs/``).

Every measurement runs in a process of its own (``bench.measure``), one after another (never
two at once: they would share the cores), under a time cap: a run that reaches it is killed and
reported as over the cap, never as a time. Wall time is the work alone (the child times it, so
that Python's and Z3's start-up are excluded), except for the two targets of the issue, which
time the ``kvmmu prove`` command as a user runs it. Peak memory is the child's maximum resident
set size (``os.wait4``), start-up included: the "baseline" row shows what importing kvmmu and
Z3 alone costs.

It writes a Markdown report (``--out``), the raw figures as JSON beside it (``.json``), and the
scaling plots (``--plots DIR``) when matplotlib is installed (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MIXED = ("special", "sp", "tdp", "special", "sp", "tdp")  # vCPU kinds, the first N of them
MEMORY_CAP = 6 << 30  # bytes of address space a measurement may take (RLIMIT_AS)


@dataclass
class Run:
    """One measurement: what was asked, and what happened."""

    group: str
    label: str
    spec: dict[str, Any]
    cap: float
    seconds: float | None = None  # None: over the cap or failed
    cpu_seconds: float | None = None  # the work's CPU time (less sensitive to a busy machine)
    maxrss_mb: float | None = None
    result: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"  # ok | over cap | failed: ...

    def shown_time(self) -> str:
        if self.status == "over cap":
            return f"> {self.cap:g} s (over the cap)"
        if self.seconds is None:
            return self.status
        return f"{self.seconds:.2f}"

    def shown_cpu(self) -> str:
        return "-" if self.cpu_seconds is None else f"{self.cpu_seconds:.2f}"

    def shown_memory(self) -> str:
        return "-" if self.maxrss_mb is None else f"{self.maxrss_mb:.0f}"


def _limit_memory() -> None:  # pragma: no cover - runs in the child before exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def _run_child(argv: Sequence[str], cap: float) -> tuple[str, float, float, int, bool]:
    """Run ``argv`` under the cap: (stdout, wall seconds, peak RSS in MB, exit status, killed).

    The peak RSS comes from ``os.wait4`` on this very child, so it is known for a killed run too
    (its peak until the kill) and never mixes with another child's."""
    start = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            preexec_fn=_limit_memory,
            start_new_session=True,
        )
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(cap, kill)
        timer.start()
        try:
            assert proc.stdout is not None
            out = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        wall = time.perf_counter() - start
        if proc.returncode != 0 and not killed.is_set():
            err.seek(0)
            out = out + "\n" + err.read()[-2000:]
    return out, wall, usage.ru_maxrss / 1024, proc.returncode, killed.is_set()


def measure(run: Run) -> Run:
    """Run one measurement in a fresh process (``bench.measure``), under its cap."""
    argv = [sys.executable, "-m", "bench.measure", json.dumps(run.spec)]
    out, _, rss, status, killed = _run_child(argv, run.cap)
    run.maxrss_mb = rss
    if killed:
        run.status = "over cap"
        return run
    if status != 0:
        last = (out.strip().splitlines() or ["?"])[-1]
        run.status = f"failed: {last[:160]}"
        return run
    data = json.loads(out.strip().splitlines()[-1])
    run.seconds = float(data["seconds"])
    run.cpu_seconds = float(data["cpu_seconds"])
    run.result = data["result"]
    return run


def command_run(run: Run) -> Run:
    """Time a whole ``kvmmu`` command (start-up included), as a user runs it."""
    argv = [sys.executable, "-m", "kvmmu.cli", *run.spec["argv"]]
    _, wall, rss, status, killed = _run_child(argv, run.cap)
    run.maxrss_mb = rss
    if killed:
        run.status = "over cap"
        return run
    run.seconds = wall
    run.result = {"exit": status}
    return run


SOLVER_NAMES = {
    "qf_bv": "SolverFor QF_BV (the project's before)",
    "qf_fd": "SolverFor QF_FD",
    "qf_bv_phase_false": "SolverFor QF_BV + sat.phase always_false (the project's now)",
    "default": "z3.Solver() (SMT core)",
}


def _vcpus(n: int) -> str:
    return f"{n} vCPU" + ("s" if n > 1 else "")


# --- the plan -----------------------------------------------------------------------------------


def plan(quick: bool) -> list[Run]:
    """Every measurement, in the order run. ``quick``: a few small ones (a smoke test)."""
    runs: list[Run] = []
    target = {"variant": "v5.16", "vcpus": ["special", "sp"], "notifier": True}
    unbounded = {**target, "max_zaps": None, "max_invalidations": None}
    runs.append(
        Run(
            "baseline",
            "import kvmmu and z3",
            {"what": "baseline"},
            30,
        )
    )
    if quick:
        runs.append(Run("bmc_depth", "depth 8", {"what": "bmc", **target, "depth": 8}, 30))
        for n in (1, 2):
            vcpus = list(MIXED[:n])
            spec = {"what": "bmc", "vcpus": vcpus, "notifier": True, "depth": 6}
            runs.append(Run("bmc_vcpus", f"{_vcpus(n)}", spec, 30))
        spec = {"what": "kind", **unbounded, "vcpus": ["special"]}
        runs.append(Run("kind", "1 vCPU: all", spec, 30))
        spec = {"what": "search", "vcpus": ["sp"], "notifier": True}
        runs.append(Run("search", "1 vCPU", spec, 30))
        for sym in (False, True):
            spec = {"what": "search", "vcpus": ["sp", "sp"], "symmetry": sym}
            runs.append(Run("symmetry", f"sp,sp: symmetry {'on' if sym else 'off'}", spec, 30))
        steps = ["conformance/cases/steps/initial_state_and_load.yaml"]
        for engine in ("impl", "spec"):
            spec = {"what": "conform", "engine": engine, "paths": steps}
            runs.append(Run("conform", engine, spec, 30))
        runs.append(
            Run("liveness", "fault_progress, sp", {"what": "liveness", "vcpus": ["sp"]}, 30)
        )
        return runs

    # 1. BMC by depth, the seed configuration with the notifier, all invariants
    for depth in (10, 20, 30, 40, 50, 60):
        runs.append(
            Run("bmc_depth", f"depth {depth}", {"what": "bmc", **target, "depth": depth}, 300)
        )
    # 2. BMC by vCPUs, mixed kinds, depth 20
    for n in range(1, 7):
        spec = {"what": "bmc", "vcpus": list(MIXED[:n]), "notifier": True, "depth": 20}
        runs.append(Run("bmc_vcpus", f"{_vcpus(n)}", spec, 300))
    # 3. k-induction, unbounded zaps and invalidations: all invariants at once, then each alone
    from kvmmu.vocab import INVARIANTS

    for n in range(1, 5):
        vcpus = list(MIXED[:n])
        spec = {"what": "kind", **unbounded, "vcpus": vcpus}
        runs.append(Run("kind", f"{_vcpus(n)}: all", spec, 300))
        for name in INVARIANTS:
            spec = {"what": "kind", **unbounded, "vcpus": vcpus, "invariants": [name]}
            runs.append(Run("kind", f"{_vcpus(n)}: {name}", spec, 300))
    # 4. the exhaustive search of the impl on the BMC configurations (bounded zaps, notifier)
    for n in range(1, 5):
        spec = {"what": "search", "vcpus": list(MIXED[:n]), "notifier": True}
        runs.append(Run("search", f"{_vcpus(n)}", spec, 120))
    # 5. symmetry reduction: vCPUs of one kind, before and after
    for vcpus, notifier in (
        (["sp", "sp"], True),
        (["special", "special"], True),
        (["special", "sp", "special"], False),
        (["sp", "sp", "sp"], False),
        (["tdp", "tdp", "tdp"], True),
        (["sp", "sp", "sp", "sp"], False),
    ):
        for sym in (False, True):
            spec = {"what": "search", "vcpus": vcpus, "notifier": notifier, "symmetry": sym}
            shown = ",".join(vcpus) + (" +notifier" if notifier else "")
            runs.append(Run("symmetry", f"{shown}: symmetry {'on' if sym else 'off'}", spec, 120))
    # 6. conformance throughput
    for engine in ("impl", "spec"):
        runs.append(Run("conform", engine, {"what": "conform", "engine": engine}, 300))
    # 7. solver choices on the depth-40 target, and incrementality at depth 30
    for solver in ("qf_bv", "qf_fd", "qf_bv_phase_false", "default"):
        spec = {"what": "bmc", **target, "depth": 40, "solver": solver}
        runs.append(Run("solver", f"BMC depth 40, {SOLVER_NAMES[solver]}", spec, 120))
    for solver in ("qf_bv", "qf_bv_phase_false", "default"):
        spec = {"what": "kind", **unbounded, "solver": solver}
        runs.append(Run("solver", f"k-induction, {SOLVER_NAMES[solver]}", spec, 120))
    for incremental in (True, False):
        spec = {"what": "bmc_plain", **target, "depth": 30, "incremental": incremental}
        how = "incremental" if incremental else "fresh solver per depth"
        runs.append(Run("incremental", f"BMC depth 30, invariants only, {how}", spec, 300))
    # 8. the targets, as the commands a user types
    prove = ["prove", "--preset", "v5.16", "--vcpus", "special,sp", "--notifier"]
    runs.append(
        Run(
            "target",
            "kvmmu " + " ".join([*prove, "--depth", "40"]),
            {"argv": [*prove, "--depth", "40"]},
            120,
        )
    )
    kind = [*prove, "--engine", "kind", "--max-zaps", "none", "--max-invalidations", "none"]
    runs.append(Run("target", "kvmmu " + " ".join(kind), {"argv": kind}, 120))
    # the liveness target (docs/protocol.md 6.11): k-liveness of both properties, under 30 s
    live = [*prove, "--property", "fault_progress", "--property", "no_retry_livelock"]
    runs.append(Run("target", "kvmmu " + " ".join(live), {"argv": live}, 120))
    runs.append(Run("liveness", "fault_progress, special,sp", {"what": "liveness", **target}, 120))
    return runs


# --- the report ---------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    import z3

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
                break
    except OSError:
        pass
    commit = "?"
    if shutil.which("git"):
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
        )
        if head.returncode == 0:
            commit = head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout else "")
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores (nproc)": str(os.cpu_count()),
        "CPU": cpu,
        "RAM": ram,
        "Python": platform.python_version(),
        "z3": z3.get_version_string(),
        "OS": f"{platform.system()} {platform.release()}",
        "commit": commit,
        "load average before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


TITLES = {
    "baseline": "Baseline: a process that imports kvmmu and Z3 and does nothing",
    "bmc_depth": "BMC by depth: v5.16, vCPUs special,sp, notifier, all invariants and covers",
    "bmc_vcpus": "BMC by vCPUs: v5.16, mixed kinds (special, sp, tdp, ...), notifier, depth 20",
    "kind": "k-induction (spec.induction.prove): v5.16, mixed kinds, notifier, "
    "unbounded zaps and invalidations; all invariants in one call, then each alone",
    "search": "Exhaustive search of the impl (impl.explore, symmetry on): v5.16, mixed "
    "kinds, notifier, max_zaps 2, max_invalidations 1, the whole state space",
    "symmetry": "Symmetry reduction in the impl's search: v5.16, vCPUs of one kind",
    "conform": "Conformance suite throughput (kvmmu.conformance.runner.run_cases)",
    "solver": "Solver choices: BMC depth 40 and k-induction on the target configuration",
    "incremental": "Incremental BMC against a fresh solver per depth",
    "target": "The issue's targets, as commands (wall time including start-up)",
    "liveness": "Liveness: the k-liveness proof of fault_progress (docs/protocol.md 6.11)",
}


NOTES = (
    "Plots: `scaling-bmc-depth.png`, `scaling-vcpus.png` and `symmetry.png` in this folder. "
    "Raw figures: `performance.json` beside this file (`python -m bench --from-json "
    "docs/performance.json` renders this report and the plots again).",
    "",
    "What the figures rest on:",
    "",
    "- The impl's exhaustive search (`impl.explore`) visits one state per class of "
    "states that differ by a permutation of same-kind vCPUs (`Model.symmetric`: sort each "
    "kind's vCPU records, rename the lock holders to match). The visited set is keyed on the "
    "class; the state expanded is the concrete one first reached, so traces name the vCPUs "
    "that really take the steps, and shortest lengths are unchanged. `explore(symmetry=False)`"
    " is the search before; the symmetry table compares the two on the same machine.",
    "- The spec's solvers (`spec.unroll.make_solver`) are `SolverFor(\"QF_BV\")` (Z3's "
    "incremental SAT solver after bit-blasting) with the SAT phase `always_false` (a small "
    "gain: compare the CPU column of the solver table); the solver table shows the "
    "alternatives on the same queries. Symmetry breaking is not used in the "
    "spec: the target configuration (`special,sp`) has no two vCPUs of one kind, and the "
    "encoding modules are left unchanged.",
    "- Times vary by a few tens of percent from run to run on a shared machine (see the load "
    "average); compare rows of one report, not across reports.",
)


def _detail(run: Run) -> str:
    r = run.result
    if run.group in ("search", "symmetry"):
        verdicts = r.get("verdicts") or {}
        bad = "; ".join(f"{k} {v}" for k, v in verdicts.items()) or "all hold"
        return f"{r.get('states', '?')} states, depth {r.get('depth', '?')}; {bad}"
    if run.group == "conform":
        cases = int(r.get("cases", 0))
        rate = cases / run.seconds if run.seconds else 0.0
        return f"{r.get('passed')}/{cases} passed, {rate:.1f} cases/s"
    if run.group == "target":
        return f"exit {r.get('exit')}"
    verdicts = r.get("verdicts") or {}
    values = list(verdicts.values())
    if values and all(v == values[0] for v in values):
        return f"all {len(values)}: {values[0]}" if len(values) > 1 else values[0]
    return "; ".join(f"{k}: {v}" for k, v in verdicts.items())


def _symmetry_rows(runs: Sequence[Run]) -> list[str]:
    rows = [
        "| configuration | states off | states on | states ratio | time off (s) | time on (s) "
        "| speed-up | memory off (MB) | memory on (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    pairs: dict[str, dict[bool, Run]] = {}
    for run in runs:
        pairs.setdefault(run.label.rsplit(":", 1)[0], {})[bool(run.spec["symmetry"])] = run
    for name, pair in pairs.items():
        off, on = pair.get(False), pair.get(True)
        if off is None or on is None:
            continue
        s_off, s_on = off.result.get("states"), on.result.get("states")
        ratio = f"{s_off / s_on:.1f}x" if s_off and s_on else "-"
        speed = f"{off.seconds / on.seconds:.1f}x" if off.seconds and on.seconds else "-"
        rows.append(
            f"| {name} | {s_off if s_off else '-'} | {s_on if s_on else '-'} | {ratio} "
            f"| {off.shown_time()} | {on.shown_time()} | {speed} "
            f"| {off.shown_memory()} | {on.shown_memory()} |"
        )
    return rows


def report(runs: Sequence[Run], info: dict[str, str], quick: bool, command: str) -> str:
    lines = [
        "# Performance",
        "",
        "Generated by `" + command + "` (`bench/`); do not edit by hand. Each row is one run in "
        "a fresh process, one at a time; time is the work alone unless said otherwise, memory "
        "the process's peak resident set size (start-up included: see the baseline). A run "
        "that reaches its time cap is killed and shown as over the cap."
        + (" **Quick mode: a smoke run, not the real figures.**" if quick else ""),
        "",
        "| machine | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in info.items()],
    ]
    lines += ["", *NOTES]
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.group, []).append(run)
    for group, members in groups.items():
        lines += ["", f"## {TITLES.get(group, group)}", ""]
        if group == "symmetry":
            lines += _symmetry_rows(members)
            continue
        lines += [
            "| run | time (s) | CPU (s) | peak memory (MB) | result |",
            "|---|---:|---:|---:|---|",
        ]
        for run in members:
            result = _detail(run) if run.status == "ok" else ""
            lines.append(
                f"| {run.label} | {run.shown_time()} | {run.shown_cpu()} | {run.shown_memory()} "
                f"| {result} |"
            )
    return "\n".join(lines) + "\n"


REPORT = Path("docs/performance.md")
QUICK_REPORT = Path("build/bench-quick/performance.md")  # ignored by git
_DOCS = Path(__file__).resolve().parent.parent / "docs"


def _committed(out: Path, plots: Path) -> bool:
    """Whether the report or the plots would land in the repository's committed ``docs/``."""
    return out.resolve().parent == _DOCS or plots.resolve() == _DOCS


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run kvmmu's benchmark suite and write docs/performance.md and its plots.",
    )
    parser.add_argument("--quick", action="store_true", help="a few small runs (a smoke test)")
    parser.add_argument(
        "--out",
        default=None,
        help=f"the Markdown report (default {REPORT}; with --quick {QUICK_REPORT}: a smoke run "
        "never overwrites the committed report)",
    )
    parser.add_argument(
        "--plots",
        default=None,
        help="folder for the PNG plots (default: the report's folder); needs matplotlib",
    )
    parser.add_argument("--no-plots", action="store_true", help="do not draw the plots")
    parser.add_argument(
        "--only", action="append", default=[], metavar="GROUP", help="run only these groups"
    )
    parser.add_argument(
        "--from-json",
        metavar="FILE",
        help="measure nothing: render the report and plots again from a raw JSON file",
    )
    args = parser.parse_args(argv)
    if args.from_json:
        raw = json.loads(Path(args.from_json).read_text())
        quick = bool(raw["quick"])
    else:
        quick = args.quick
    out = Path(args.out or (QUICK_REPORT if quick else REPORT))
    plots = Path(args.plots) if args.plots else out.parent
    if quick and _committed(out, plots):
        parser.error(
            f"a --quick run never writes the committed {REPORT.parent}/ (default {QUICK_REPORT})"
        )
    if args.from_json:
        runs = [Run(**r) for r in raw["runs"]]
        info = raw["machine"]
    else:
        runs = plan(quick)
        if args.only:
            runs = [r for r in runs if r.group in args.only]
        info = machine()
        for n, run in enumerate(runs, 1):
            (command_run if run.group == "target" else measure)(run)
            print(
                f"[{n}/{len(runs)}] {run.group}: {run.label}: {run.shown_time()}"
                f"{' s' if run.seconds is not None else ''}, {run.shown_memory()} MB",
                flush=True,
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    command = "python -m bench" + (" --quick" if quick else "")
    out.write_text(report(runs, info, quick, command))
    print(f"wrote {out}")
    if not args.from_json:
        raw = {"machine": info, "quick": quick, "runs": [asdict(r) for r in runs]}
        out.with_suffix(".json").write_text(json.dumps(raw, indent=1) + "\n")
        print(f"wrote {out.with_suffix('.json')}")
    if not args.no_plots:
        from bench.plots import draw

        for line in draw(runs, plots):
            print(line)
    return 0 if all(r.status == "ok" or r.status == "over cap" for r in runs) else 1
