"""Atomic file output: write to a temporary file beside the target, then rename.

A crash, a Ctrl-C or a killed Dask worker therefore never leaves a half-written file
under the final name; re-runs can trust that an existing output is complete.
"""

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_path"]


@contextlib.contextmanager
def atomic_path(path, overwrite=True):
    """Yield a temporary path in ``path``'s directory; rename it to ``path`` on success.

    The temporary file keeps ``path``'s suffix so writers that pick a format from the
    extension (astropy, regions, matplotlib) behave as for the final name.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: exists (pass overwrite=True to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # writers that refuse to overwrite (astropy) get a fresh name
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
