"""Exception types shared across the package (the others live beside the code that raises them).

The command line turns every exception type the package documents into a
one-line message; see ``portable_nn.cli.EXPECTED_ERRORS``.
"""

from __future__ import annotations


class OptionalDependencyError(ImportError):
    """A feature needs an optional package that is not installed; the message gives the ``pip`` command."""
