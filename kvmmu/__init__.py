"""kvmmu: a formal specification and an executable model of the KVM x86 MMU obsolete-root protocol."""

__version__ = "0.1.0"
