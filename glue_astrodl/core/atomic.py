"""Atomic file output: write to a temporary file beside the target, then rename.

A crash, a Ctrl-C or a killed Dask worker therefore never leaves a half-written file
under the final name; re-runs can trust that an existing output is complete.
"""

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_path", "remove_stale_parts"]


@contextlib.contextmanager
def atomic_path(path, overwrite=True):
    """Yield a temporary path in ``path``'s directory; rename it to ``path`` on success.

    The temporary file keeps ``path``'s suffix so writers that pick a format from the
    extension (astropy, regions, matplotlib) behave as for the final name.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> target = Path(tempfile.mkdtemp()) / "result.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")  # a crash here leaves no result.txt
    ...     print(tmp.suffix, target.exists())
    .txt False
    >>> target.read_text()
    'done'
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: exists (pass overwrite=True to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_part_prefix(path), suffix=_part_suffix(path), dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # writers that refuse to overwrite (astropy) get a fresh name
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _part_prefix(path):
    return f".{path.name}."


def _part_suffix(path):
    return f".part{path.suffix}"


def remove_stale_parts(path):
    """Delete temporaries of ``path`` left by a writer that was killed (SIGKILL skips cleanup).

    Call it only where no other process is writing ``path``, e.g. when a batch job for
    ``path`` starts or is skipped. Returns the number of files removed.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> target = Path(tempfile.mkdtemp()) / "out.fits"
    >>> (target.parent / ".out.fits.x1y2z3.part.fits").touch()  # left by a killed writer
    >>> remove_stale_parts(target)
    1
    """
    path = Path(path)
    if not path.parent.is_dir():
        return 0
    stale = [p for p in path.parent.iterdir()
             if p.name.startswith(_part_prefix(path)) and p.name.endswith(_part_suffix(path))]
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)
