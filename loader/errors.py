"""Errors shared by the commands."""

from __future__ import annotations


class UsageError(ValueError):
    """A command was called with options or arguments it cannot run with: the CLI reports its
    message on one line and exits 2.  Any other ValueError is a failure (exit 1), named by type."""
