"""The linters are part of the suite: ruff and mypy (strict) must be clean on the whole tree."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_is_clean() -> None:
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def _imported_modules(folder: str) -> set[str]:
    """Every module that a Python file under ``folder`` imports (absolute imports only)."""
    found: set[str] = set()
    paths = [ROOT / folder] if folder.endswith(".py") else (ROOT / folder).rglob("*.py")
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)
    return found


def test_the_two_models_are_independent() -> None:
    """spec/ and impl/ share the vocabulary (kvmmu.vocab, kvmmu.engine), never their logic."""
    shared = {"kvmmu.vocab", "kvmmu.engine"}
    # the parametric proof confirms an abstract violation by concrete BMC through the harness's
    # verdict wrapper, which itself runs only the spec
    allowed = {"spec": shared | {"kvmmu.prover"}, "impl": shared}
    for folder, other in (("spec", "impl"), ("impl", "spec")):
        imported = _imported_modules(folder)
        crossing = {m for m in imported if m == other or m.startswith(other + ".")}
        assert not crossing, f"{folder}/ imports {sorted(crossing)}"
        harness = {m for m in imported if m.startswith("kvmmu.")}
        assert harness <= allowed[folder], f"{folder}/ imports {sorted(harness - allowed[folder])}"
    assert not {m for m in _imported_modules("kvmmu/prover.py") if m.startswith("impl")}


def _use_it_commands() -> list[str]:
    """The shell commands of the README's "Use it" section, one per code block line."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use it", 1)[1].split("\n## ", 1)[0]
    blocks = section.split("```sh\n")[1:]
    return [line for block in blocks for line in block.split("```", 1)[0].splitlines() if line]


def test_the_readme_states_exactly_two_commands_and_ci_runs_the_test_command() -> None:
    main_job, tests = _use_it_commands()  # exactly two: unpacking fails otherwise
    assert main_job.startswith("python3 -m venv .venv") and "kvmmu prove proofs/" in main_job
    assert tests.startswith("python3 -m venv .venv") and "pytest" in tests
    assert tests in (ROOT / ".ci" / "run").read_text().splitlines()
