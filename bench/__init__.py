"""kvmmu's benchmark suite: a command, not a test. ``python -m bench [--quick]`` (see ``run``)."""
