"""Exceptions shared by every entry point.

``BadInputError`` means the user gave us something we cannot use (a file that is not
FITS, a 1-D array, a weights file whose checksum does not match, ...). Its message is one
line that names the input and the problem; the CLI prints it and exits with code 2, the
viewers show it in a snackbar.
"""

__all__ = ["BadInputError", "Cancelled"]


class BadInputError(ValueError):
    """Input the user can fix; ``str(err)`` is a one-line explanation.

    Examples
    --------
    >>> import numpy as np
    >>> from glue_astrodl.tasks.inputs import as_image
    >>> try:
    ...     as_image(np.zeros((4, 4)))
    ... except BadInputError as err:  # also a ValueError
    ...     print(err)
    image: image too small (4x4); need at least 8x8 pixels
    """


class Cancelled(RuntimeError):
    """Raised when a progress callback asks long work to stop.

    Examples
    --------
    >>> def progress(done, total):  # a callback that asks the work to stop
    ...     if done >= 2:
    ...         raise Cancelled("stopped by the user")
    >>> try:
    ...     for step in range(5):
    ...         progress(step, 5)
    ... except Cancelled as err:
    ...     print(step, err)
    2 stopped by the user
    """
