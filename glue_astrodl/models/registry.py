"""Architecture registry: maps a name (as written in model cards) to an ``nn.Module`` class.

Model modules in ``glue_astrodl.models`` decorate their classes::

    @register_architecture("unet-small")
    class SmallUNet(nn.Module): ...

and ``glue_astrodl/models/__init__.py`` imports those modules, so importing
``glue_astrodl.models`` fills the registry. This module imports none of them (arrows
point one way: model modules -> registry) and does no file I/O.
"""

from types import MappingProxyType

from torch import nn

__all__ = ["ARCHITECTURES", "register_architecture", "get_architecture", "architectures", "architecture_name"]

_ARCHITECTURES = {}
#: Read-only ``{name: class}`` view of the registry, handed to `glue_astrodl.core.weights`.
ARCHITECTURES = MappingProxyType(_ARCHITECTURES)


def register_architecture(name):
    """Class decorator: register an ``nn.Module`` subclass under ``name``.

    Registering a different class under a taken name raises ``ValueError``; re-running
    the same class definition (module reload) replaces the entry.

    Examples
    --------
    >>> from torch import nn
    >>> @register_architecture("doc-example-net")
    ... class DocExampleNet(nn.Module):
    ...     def __init__(self, n_classes=2):
    ...         super().__init__()
    ...         self.head = nn.Conv2d(1, n_classes, 1)
    >>> get_architecture("doc-example-net") is DocExampleNet  # model cards can now name it
    True
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"architecture name must be a non-empty string, got {name!r}")

    def decorator(cls):
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise TypeError(f"register_architecture({name!r}): {cls!r} is not an nn.Module subclass")
        old = _ARCHITECTURES.get(name)
        if old is not None and old is not cls and _qualname(old) != _qualname(cls):
            raise ValueError(f"architecture {name!r} is already registered to {_qualname(old)}")
        _ARCHITECTURES[name] = cls
        return cls

    return decorator


def get_architecture(name):
    """Return the class registered as ``name``; ``KeyError`` listing known names if none.

    Examples
    --------
    >>> get_architecture("contaminant-unet").__name__
    'ContaminantNet'
    >>> get_architecture("no-such-net")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    KeyError: "unknown architecture 'no-such-net' (known: ...contaminant-unet...)"
    """
    try:
        return _ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(architectures()) or "none registered"
        raise KeyError(f"unknown architecture {name!r} (known: {known})") from None


def architectures():
    """Sorted list of registered architecture names.

    Examples
    --------
    >>> "contaminant-unet" in architectures()
    True
    """
    return sorted(_ARCHITECTURES)


def architecture_name(model_or_class):
    """Registered name of a module instance or class (exact class match), or ``None``.

    Examples
    --------
    >>> from glue_astrodl.models.contaminant_net import ContaminantNet
    >>> architecture_name(ContaminantNet), architecture_name(ContaminantNet(n_classes=2, widths=(4, 4, 4, 4, 4)))
    ('contaminant-unet', 'contaminant-unet')
    >>> from torch import nn
    >>> architecture_name(nn.Conv2d(1, 1, 1)) is None
    True
    """
    cls = model_or_class if isinstance(model_or_class, type) else type(model_or_class)
    for name, registered in _ARCHITECTURES.items():
        if registered is cls:
            return name
    return None


def _qualname(cls):
    return f"{cls.__module__}.{cls.__qualname__}"
