"""The scaling plots of the benchmark suite (PNG, matplotlib: ``pip install -e '.[bench]'``).

``draw`` writes ``scaling-bmc-depth.png`` (BMC time and memory by depth),
``scaling-vcpus.png`` (time and memory of each engine by number of vCPUs, with the search's
state count) and ``symmetry.png`` (the impl's search with and without symmetry reduction).
Runs over their time cap are drawn at the cap with an upward triangle. Without matplotlib,
nothing is drawn and a message says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.run import Run

FILES = ("scaling-bmc-depth.png", "scaling-vcpus.png", "symmetry.png")


def _number(label: str) -> int:
    found = re.search(r"\d+", label)
    return int(found.group()) if found else 0


def _series(
    runs: Sequence[Run],
) -> tuple[list[int], list[float], list[float], list[tuple[int, float | None]]]:
    """x, time, memory of the runs that finished; x and memory of those over the cap."""
    xs: list[int] = []
    times: list[float] = []
    memory: list[float] = []
    over: list[tuple[int, float | None]] = []
    for run in runs:
        x = _number(run.label)
        if run.seconds is not None:
            xs.append(x)
            times.append(max(run.seconds, 1e-3))
            memory.append(run.maxrss_mb or 0.0)
        elif run.status == "over cap":
            over.append((x, run.maxrss_mb))
    return xs, times, memory, over


def _plot_engine(ax_t: Any, ax_m: Any, runs: Sequence[Run], name: str, style: str) -> None:
    xs, times, memory, over = _series(runs)
    (line,) = ax_t.plot(xs, times, style, label=name)
    if memory:
        ax_m.plot(xs, memory, style, label=name, color=line.get_color())
    cap = max(r.cap for r in runs)
    for x, mb in over:
        ax_t.plot([x], [cap], "^", color=line.get_color(), markersize=10)
        ax_t.annotate("over cap", (x, cap), textcoords="offset points", xytext=(4, -12))
        if mb:  # the peak until the kill
            ax_m.plot([x], [mb], "^", color=line.get_color(), markersize=10)


def draw(runs: Sequence[Run], folder: Path) -> list[str]:
    """Draw the plots into ``folder``; returns what was done, one line each."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [
            "plots skipped: matplotlib is not installed (pip install -e '.[bench]' to draw "
            + ", ".join(FILES)
            + ")"
        ]
    folder.mkdir(parents=True, exist_ok=True)
    done: list[str] = []

    def group(name: str, prefix: str = "") -> list[Run]:
        return [r for r in runs if r.group == name and r.label.startswith(prefix)]

    # 1. BMC by depth
    depth_runs = group("bmc_depth")
    if depth_runs:
        fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
        _plot_engine(ax_t, ax_m, depth_runs, "BMC (all invariants + covers)", "o-")
        ax_t.set_yscale("log")
        ax_t.set_xlabel("depth (steps)")
        ax_t.set_ylabel("time (s, log scale)")
        ax_t.set_title("BMC time by depth")
        ax_t.grid(True, which="both", alpha=0.3)
        ax_m.set_xlabel("depth (steps)")
        ax_m.set_ylabel("peak RSS (MB)")
        ax_m.set_title("BMC peak memory by depth")
        ax_m.grid(True, alpha=0.3)
        fig.suptitle("v5.16, vCPUs special,sp, notifier, max_zaps 2, max_invalidations 1")
        fig.tight_layout()
        path = folder / FILES[0]
        fig.savefig(path, dpi=110)
        plt.close(fig)
        done.append(f"wrote {path}")

    # 2. each engine by vCPUs
    engines = [
        ("BMC depth 20", group("bmc_vcpus"), "o-"),
        (
            "k-induction, all invariants",
            [r for r in group("kind") if r.label.endswith(": all")],
            "s-",
        ),
        ("impl exhaustive search", group("search"), "D-"),
    ]
    if any(members for _, members, _ in engines):
        fig, (ax_t, ax_m, ax_s) = plt.subplots(1, 3, figsize=(15, 4.4))
        for name, members, style in engines:
            if members:
                _plot_engine(ax_t, ax_m, members, name, style)
        search = [r for r in group("search") if r.result.get("states")]
        if search:
            ax_s.plot(
                [_number(r.label) for r in search],
                [int(r.result["states"]) for r in search],
                "D-",
                color="tab:green",
                label="states (symmetry on)",
            )
        ax_t.set_yscale("log")
        ax_t.set_title("time by vCPUs")
        ax_t.set_ylabel("time (s, log scale)")
        ax_m.set_title("peak memory by vCPUs")
        ax_m.set_ylabel("peak RSS (MB)")
        ax_s.set_yscale("log")
        ax_s.set_title("impl search: states by vCPUs")
        ax_s.set_ylabel("distinct states (log scale)")
        for ax in (ax_t, ax_m, ax_s):
            ax.set_xlabel("vCPUs (special, sp, tdp, special, ...)")
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle("v5.16 with the notifier (k-induction: unbounded zaps and invalidations)")
        fig.tight_layout()
        path = folder / FILES[1]
        fig.savefig(path, dpi=110)
        plt.close(fig)
        done.append(f"wrote {path}")

    # 3. symmetry reduction
    sym = group("symmetry")
    pairs: dict[str, dict[bool, Run]] = {}
    for run in sym:
        pairs.setdefault(run.label.rsplit(":", 1)[0], {})[bool(run.spec.get("symmetry"))] = run
    names = [n for n, p in pairs.items() if len(p) == 2]
    if names:
        fig, (ax_s, ax_t) = plt.subplots(1, 2, figsize=(12, 4.4))
        xs = list(range(len(names)))
        width = 0.38
        for offset, on, label in ((-width / 2, False, "off"), (width / 2, True, "on")):
            states = [float(pairs[n][on].result.get("states", 0)) for n in names]
            # a run over its cap is drawn hatched at the cap: its time is at least that
            times = [pairs[n][on].seconds or pairs[n][on].cap for n in names]
            hatches = ["//" if pairs[n][on].seconds is None else "" for n in names]
            ax_s.bar([x + offset for x in xs], states, width, label=f"symmetry {label}")
            bars = ax_t.bar([x + offset for x in xs], times, width, label=f"symmetry {label}")
            for bar, hatch, x in zip(bars, hatches, xs, strict=True):
                bar.set_hatch(hatch)
                if hatch:
                    ax_t.annotate(
                        "over cap",
                        (x + offset, times[x]),
                        ha="center",
                        fontsize=8,
                        textcoords="offset points",
                        xytext=(0, 3),
                    )
                    ax_s.annotate(
                        "over cap",
                        (x + offset, 1),
                        ha="center",
                        fontsize=8,
                        rotation=90,
                        xycoords=("data", "axes fraction"),
                        textcoords="offset points",
                        xytext=(0, -60),
                    )
        for ax, title in ((ax_s, "distinct states"), (ax_t, "time (s)")):
            ax.set_xticks(xs)
            ax.set_xticklabels(names, rotation=20, ha="right", fontsize=8)
            ax.set_yscale("log")
            ax.set_title(f"impl search: {title} (log scale)")
            ax.legend(fontsize=8)
            ax.grid(True, axis="y", which="both", alpha=0.3)
        fig.tight_layout()
        path = folder / FILES[2]
        fig.savefig(path, dpi=110)
        plt.close(fig)
        done.append(f"wrote {path}")
    return done
