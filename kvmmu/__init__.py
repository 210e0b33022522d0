"""kvmmu: a formal specification and an executable model of KVM x86 MMU obsolete roots."""

__version__ = "0.1.0"
