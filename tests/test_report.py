"""The HTML report of ``kvmmu explore --html``: self-contained, each violated cell opening its
counterexample drawn as per-actor lanes in an inline SVG; and the page in a real (headless)
browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kvmmu.explore import Exploration, explore, make_sweep
from kvmmu.render import replay_states
from kvmmu.report import html_report, kernel_function, lanes_svg, lock_holders
from kvmmu.vocab import Config, Problem, Step, make_variant
from spec import SpecEngine

CONFIG = Config(notifier=True)
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def exploration() -> Exploration:
    """paolo and v5.16 on Sean's invariant, by BMC: one violated cell, one that holds."""
    sweep = make_sweep(
        [make_variant("paolo"), make_variant("v5.16")],
        [CONFIG],
        ["no_spte_in_obsolete_root"],
        engine="bmc",
        bound=14,
    )
    return explore(sweep, jobs=1, replay=True)


@pytest.fixture(scope="module")
def page(exploration: Exploration, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(html_report(exploration), encoding="utf-8")
    return path


def svg_texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_lanes_have_a_column_per_actor_and_a_row_per_step(exploration: Exploration) -> None:
    result = exploration.results[0][0]
    assert result.verdict.verdict == "violated" and result.replay is not None
    trace = result.verdict.trace
    svg = lanes_svg(make_variant("paolo"), CONFIG, trace, result.states, result.replay)
    texts = svg_texts(svg)  # well-formed XML
    for header in ("vcpu0 (special)", "vcpu1 (sp)", "zapper", "notifier", "mmu_lock", "gen"):
        assert header in texts
    root = ET.fromstring(svg)
    rows = [g for g in root.iter(f"{SVG}g") if g.get("class") == "step"]
    assert len(rows) == len(trace) + 1  # the initial state, then one row per step
    assert "fault.map" in texts and "__direct_map()" in texts
    assert "is_page_fault_stale()" in texts and "kvm_zap_obsolete_pages()" in texts
    assert "VIOLATES no_spte_in_obsolete_root" in texts
    assert "vcpu0 (write)" in texts  # the lock holder at the violating fault.map
    assert any(t.startswith("root g0 obsolete invalid spte") for t in texts)


def test_lock_holders_follow_the_lock_steps() -> None:
    steps = [Step("zapper", "zap.lock"), Step("zapper", "zap.unlock"), Step("vcpu1", "fault.lock")]
    states = [{"kvm.mmu_lock": m} for m in ("free", "write", "free", "read")]
    assert lock_holders(steps, states) == ["free", "zapper (write)", "free", "vcpu1 (read)"]
    answered = [{"kvm.mmu_lock": "write", "kvm.mmu_lock.holders": "vcpu0"}]
    assert lock_holders([], answered) == ["vcpu0 (write)"]


def test_kernel_functions_depend_on_the_variant() -> None:
    v518 = make_variant("v5.18")
    tdp = Config(vcpus=("tdp",))
    assert kernel_function(Step("vcpu0", "vcpu.unload"), v518, tdp, {}) == (
        "kvm_mmu_free_obsolete_roots()"
    )
    read = {"kvm.mmu_lock": "read"}
    fault_lock = Step("vcpu0", "fault.lock")
    assert kernel_function(fault_lock, v518, tdp, read) == "read_lock(&kvm->mmu_lock)"
    assert kernel_function(Step("vcpu0", "fault.map"), v518, tdp, {}) == "kvm_tdp_mmu_map()"


def test_the_page_is_self_contained(page: Path) -> None:
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"<link|@import|\bsrc=|url\(|href=\"(https?:)?//", html)
    assert '<details class="cx" id="cx-0-0">' in html
    assert 'href="#cx-0-0" data-cx="cx-0-0">violated in 13</a>' in html
    assert "<svg" in html and "<script>" in html and "<style>" in html
    assert 'class="holds"' in html  # v5.16


def test_the_same_lanes_from_a_direct_replay(exploration: Exploration) -> None:
    """The report draws the spec's own replay: the same states as render.replay_states."""
    result = exploration.results[0][0]
    problem = Problem(make_variant("paolo"), CONFIG)
    _, states = replay_states(SpecEngine(), problem, result.verdict.trace)
    assert [dict(s) for s in result.states] == states


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# .ci/run installs chromium, so in CI its absence is a failure, not a reason to skip
@pytest.mark.skipif(
    _chromium() is None and not os.environ.get("CI"),
    reason="no chromium binary (.ci/run installs it)",
)
def test_the_report_opens_in_a_browser(page: Path, tmp_path: Path) -> None:
    """Headless Chromium loads the page; following the violated cell's link (the URL's
    fragment) makes the script open the counterexample's <details>; and it renders."""
    browser = _chromium()
    assert browser is not None
    with tempfile.TemporaryDirectory() as profile:
        flags = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
        url = page.as_uri() + "#cx-0-0"
        dom = subprocess.run(
            [*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
        ).stdout
        shot = tmp_path / "report.png"
        subprocess.run(
            [*flags, "--window-size=1400,1000", f"--screenshot={shot}", url],
            capture_output=True,
            timeout=120,
            check=True,
        )
    match = re.search(r'<details class="cx" id="cx-0-0"([^>]*)>(.*?)</details>', dom, re.S)
    assert match, dom[:2000]
    assert "open" in match.group(1)  # opened by the script
    body = match.group(2)
    assert "<svg" in body and "VIOLATES no_spte_in_obsolete_root" in body
    assert "fault.map" in body and "kvm_zap_obsolete_pages()" in body
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lanes_mark_the_loop_of_a_lasso() -> None:
    # K6 (docs/protocol.md 6.11): the implementation's lasso, its loop start marked
    from impl import ImplEngine
    from impl.fair import find_lasso

    variant = make_variant("v5.16", {"is_page_fault_stale.mmu_seq": "int"})
    config = Config(vcpus=("sp",), zappers=0, notifier=True)
    found = find_lasso(variant, config, "fault_progress")
    assert found.verdict == "violated" and found.loop_start == 3
    replay, states = replay_states(ImplEngine(), Problem(variant, config), found.trace)
    svg = lanes_svg(variant, config, found.trace, states, replay, loop=found.loop_start)
    root = ET.fromstring(svg)
    start = next(e for e in root.iter(f"{SVG}line") if e.get("class") == "loop-start")
    band = next(e for e in root.iter(f"{SVG}rect") if e.get("class") == "loop")
    assert start.get("y1") == band.get("y")
    rows = {g.get("data-index"): g for g in root.iter(f"{SVG}g") if g.get("class") == "step"}
    marks = {i: [t.text for t in g.iter(f"{SVG}text")] for i, g in rows.items()}
    assert "LOOP STARTS: this state repeats" in marks["3"]
    assert "= state 3: the loop repeats" in marks[str(len(found.trace))]
    # without a loop: no marks
    plain = lanes_svg(variant, config, found.trace, states, replay)
    assert "loop-start" not in plain and "LOOP STARTS" not in plain
    with pytest.raises(ValueError, match="loop start"):
        lanes_svg(variant, config, found.trace, states, replay, loop=len(found.trace))


def test_explore_liveness_columns_and_the_lasso_in_the_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from kvmmu.cli import main

    page = tmp_path / "k6.html"
    argv = ["explore", "--knob", "is_page_fault_stale.mmu_seq=int", "--vcpus", "sp"]
    argv += ["--zappers", "0", "--notifier", "--property", "fault_progress", "--jobs", "1"]
    assert main([*argv, "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert "fault_progress" in out and "violated in 16 (loop at 9)" in out
    assert "no_spte_in_obsolete_root" not in out  # only the asked-for column
    html = page.read_text()
    assert "LOOP STARTS: this state repeats" in html and "= state 9: the loop repeats" in html
    # with --invariant too, both kinds of columns; the fix makes progress
    fixed = [a.replace("=int", "=unsigned_long") for a in argv]
    assert main([*fixed, "--invariant", "no_stale_pfn", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["invariants"] == ["no_stale_pfn", "fault_progress"]
    verdicts = [c["verdict"] for row in doc["rows"] for c in row["cells"]]
    assert verdicts == ["proved", "proved"]
    assert main([*argv, "--property", "nonsense"]) == 2
