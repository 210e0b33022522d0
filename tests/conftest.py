"""Test-suite settings: Hypothesis runs deterministically (a fixed, derandomized profile), so a
CI run and a developer's run explore the same examples."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "kvmmu",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("kvmmu")
