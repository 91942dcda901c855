"""Device and precision: CUDA with bf16 autocast when present, else all CPU cores.

Choice order: the ``device`` argument, then the ``ASTRODL_DEVICE`` environment variable,
then ``cuda`` if available, else ``cpu``.
"""

import contextlib
import os

import torch

from .errors import BadInputError

__all__ = ["resolve_device", "autocast", "use_all_cores", "describe_device"]


def resolve_device(device=None):
    """Return the ``torch.device`` to run on.

    Examples
    --------
    >>> resolve_device("cpu")  # else $ASTRODL_DEVICE, else CUDA when available
    device(type='cpu')
    >>> resolve_device("tpu")
    Traceback (most recent call last):
    ...
    glue_astrodl.core.errors.BadInputError: unknown device 'tpu': ...
    """
    name = device or os.environ.get("ASTRODL_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise BadInputError(f"unknown device {name!r}: {err}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BadInputError(f"device {name!r} requested but CUDA is not available on this machine")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise BadInputError(f"device {name!r} requested but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise BadInputError(f"device {name!r} requested but Apple MPS is not available on this machine")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise BadInputError(f"device {name!r}: glue-astrodl runs on cpu, cuda or mps")
    if dev.type == "cpu":
        use_all_cores()
    return dev


def use_all_cores(n_threads=None):
    """Let torch use every core we are allowed to run on (or ``n_threads``).

    Examples
    --------
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> use_all_cores(1)
    >>> torch.get_num_threads()
    1
    >>> use_all_cores(before)  # restore
    """
    if n_threads is None and os.environ.get("ASTRODL_THREADS"):
        n_threads = int(os.environ["ASTRODL_THREADS"])  # set per Dask worker by core.batch
    if n_threads is None:
        n_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    n = n_threads
    if torch.get_num_threads() != n:
        torch.set_num_threads(max(1, int(n)))


def autocast(device):
    """bf16 autocast on CUDA; full precision on CPU (where bf16 is slower for small nets).

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Conv2d(1, 1, 3)
    >>> with torch.no_grad(), autocast("cpu"):  # bf16 only on CUDA
    ...     y = net(torch.zeros(1, 1, 8, 8))
    >>> y.dtype
    torch.float32
    """
    if torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe_device(device=None):
    """One-line human description of the device that would be used.

    Examples
    --------
    >>> describe_device("cpu")  # doctest: +ELLIPSIS
    'cpu (... threads, float32)'
    """
    dev = resolve_device(device)
    if dev.type == "cuda":
        return f"cuda:{dev.index or 0} ({torch.cuda.get_device_name(dev)}, bf16 autocast)"
    return f"cpu ({torch.get_num_threads()} threads, float32)"
