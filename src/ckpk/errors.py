"""Exceptions ckpk raises for bad input.

Every message names the file (or row) and the problem in words a lab scientist
understands; the workflow turns them into ledger rows instead of stopping.
"""

from __future__ import annotations


class CkpkError(Exception):
    """Base class of every error ckpk raises on purpose."""


class InputError(CkpkError, ValueError):
    """An input file or table cannot be used; the message says which and why."""


class ConfigError(CkpkError, ValueError):
    """The configuration is invalid; the message names the key."""
