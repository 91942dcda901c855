"""Exceptions shared by every entry point.

``BadInputError`` means the user gave us something we cannot use (a file that is not
FITS, a 1-D array, a weights file whose checksum does not match, ...). Its message is one
line that names the input and the problem; the CLI prints it and exits with code 2, the
viewers show it in a snackbar.
"""

__all__ = ["BadInputError", "Cancelled"]


class BadInputError(ValueError):
    """Input the user can fix; ``str(err)`` is a one-line explanation."""


class Cancelled(RuntimeError):
    """Raised when a progress callback asks long work to stop."""
