"""glue integration, registered by ``glue_astrodl.setup`` (entry point ``glue.plugins``).

`register` adds to glue's registries: the data factory for glue-astrodl and MaxiMask
products, one button per registered task in glue-jupyter image viewers (generated from the
task registry), exporters (subset polygons as region files, images and subsets as FITS
products), the RA/Dec-to-pixels link helper and an autolinker for products.
"""

__all__ = ["register"]

_registered = False


def register():
    """Register glue-astrodl with glue (idempotent)."""
    global _registered
    if _registered:
        return
    from glue.config import autolinker, data_exporter, data_factory, link_helper, subset_mask_exporter, viewer_tool

    from ..tasks.registry import tasks
    from .exporters import REGION_SUFFIXES, export_fits, export_mask_regions, export_regions
    from .factories import is_product, read_product
    from .links import SkyToPixelLink, product_links
    from .tools import task_tool

    data_factory("glue-astrodl product (FITS)", identifier=is_product, priority=10000)(read_product)
    data_exporter("Regions: subset polygons (ds9 .reg, CRTF, FITS)", extension=REGION_SUFFIXES)(export_regions)
    data_exporter("glue-astrodl product (FITS with WCS)", extension=["fits"])(export_fits)
    subset_mask_exporter("Regions: pixel polygons (ds9 .reg, CRTF)", extension=["reg", "crtf"])(export_mask_regions)
    link_helper(category="Astronomy")(SkyToPixelLink)
    autolinker("glue-astrodl products")(product_links)
    tools = [task_tool(task) for task in tasks()]
    for tool in tools:
        viewer_tool(tool)
    try:
        from glue_jupyter.bqplot.image import BqplotImageView
    except ImportError:  # glue desktop without glue-jupyter: no notebook viewers to add buttons to
        pass
    else:
        BqplotImageView.tools = [*BqplotImageView.tools, *(t.tool_id for t in tools
                                                           if t.tool_id not in BqplotImageView.tools)]
    _registered = True
