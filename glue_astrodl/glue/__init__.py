"""glue integration: registered by ``glue_astrodl.setup`` (entry point ``glue.plugins``)."""

__all__ = ["register"]

_registered = False


def register():
    """Register glue-astrodl's data factories with glue (idempotent)."""
    global _registered
    if _registered:
        return
    from glue.config import data_factory

    from .factories import is_astrodl_product, read_astrodl_product

    data_factory("glue-astrodl product (FITS)", identifier=is_astrodl_product, priority=10000)(read_astrodl_product)
    _registered = True
