"""Device and precision: CUDA when present, else all CPU cores; bf16 autocast where native.

Device choice order: the ``device`` argument, then the ``ASTRODL_DEVICE`` environment
variable, then ``cuda`` if available, else ``cpu``.

Precision (`resolve_precision`): the ``precision`` argument, then ``ASTRODL_PRECISION``
(``auto``, ``bf16`` or ``fp32``), then ``auto``: bf16 autocast on CUDA and on CPUs that
compute bf16 natively (AVX512-BF16 or AMX, `native_bf16`), float32 elsewhere (where bf16
is emulated and slower).
"""

import contextlib
import functools
import os

import torch

from .errors import BadInputError

__all__ = ["PRECISIONS", "resolve_device", "resolve_precision", "native_bf16", "autocast", "use_all_cores",
           "describe_device"]

#: Values of the ``precision`` switch (``ASTRODL_PRECISION``, ``--precision``).
PRECISIONS = ("auto", "bf16", "fp32")


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
        count = torch.cuda.device_count()
        raise BadInputError(f"device {name!r} requested but this machine has {count} CUDA device(s)")
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


@functools.lru_cache(maxsize=1)
def native_bf16():
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX tiles), as torch's CPU
    kernels see it, else as ``/proc/cpuinfo`` flags say (``avx512_bf16``, ``amx_bf16``)."""
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        try:
            if getattr(torch.cpu, probe)():
                return True
        except (AttributeError, RuntimeError):
            pass
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


def resolve_precision(device="cpu", precision=None):
    """``"bf16"`` or ``"fp32"``: the precision the network runs at on ``device``.

    ``precision`` (else ``$ASTRODL_PRECISION``, else ``"auto"``) is one of `PRECISIONS`;
    ``auto`` is bf16 on CUDA and on CPUs with native bf16 (`native_bf16`), else fp32.

    Examples
    --------
    >>> resolve_precision("cpu", "fp32"), resolve_precision("cpu", "bf16")
    ('fp32', 'bf16')
    >>> resolve_precision("cpu") == ("bf16" if native_bf16() else "fp32")  # doctest: +SKIP
    True
    >>> resolve_precision("cpu", "fp16")
    Traceback (most recent call last):
    ...
    glue_astrodl.core.errors.BadInputError: precision must be one of auto, bf16, fp32, got 'fp16'
    """
    choice = precision or os.environ.get("ASTRODL_PRECISION") or "auto"
    choice = str(choice).strip().lower()
    if choice not in PRECISIONS:
        where = "" if precision else " ($ASTRODL_PRECISION)"
        raise BadInputError(f"precision{where} must be one of {', '.join(PRECISIONS)}, got {choice!r}")
    if choice != "auto":
        return choice
    kind = torch.device(device).type
    return "bf16" if kind == "cuda" or (kind == "cpu" and native_bf16()) else "fp32"


def autocast(device, precision=None):
    """The autocast context of `resolve_precision` ``(device, precision)``: bf16 autocast,
    or autocast switched off (float32, also inside an outer bf16 autocast).

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Conv2d(1, 1, 3)
    >>> with torch.no_grad(), autocast("cpu", "bf16"):
    ...     y = net(torch.zeros(1, 1, 8, 8))
    >>> y.dtype
    torch.bfloat16
    >>> with torch.no_grad(), autocast("cpu", "fp32"):
    ...     y = net(torch.zeros(1, 1, 8, 8))
    >>> y.dtype
    torch.float32
    """
    kind = torch.device(device).type
    if kind not in ("cpu", "cuda"):
        return contextlib.nullcontext()
    if resolve_precision(device, precision) == "bf16":
        return torch.autocast(kind, dtype=torch.bfloat16)
    return torch.autocast(kind, enabled=False)


def describe_device(device=None, precision=None):
    """One-line human description of the device that would be used.

    Examples
    --------
    >>> describe_device("cpu", "fp32")  # doctest: +ELLIPSIS
    'cpu (... threads, float32)'
    """
    dev = resolve_device(device)
    prec = "bf16 autocast" if resolve_precision(dev, precision) == "bf16" else "float32"
    if dev.type == "cuda":
        return f"cuda:{dev.index or 0} ({torch.cuda.get_device_name(dev)}, {prec})"
    return f"cpu ({torch.get_num_threads()} threads, {prec})"
