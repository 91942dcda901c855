"""glue integration, registered by ``glue_astrodl.setup`` (entry point ``glue.plugins``).

`register` adds to glue's registries: the data factory for glue-astrodl and MaxiMask
products, the "Detect contaminants" / "Detect sources" buttons of glue-jupyter image
viewers, exporters (subset polygons as region files, images and subsets as FITS
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
    from glue_jupyter.bqplot.image import BqplotImageView

    from .exporters import REGION_SUFFIXES, export_fits, export_mask_regions, export_regions
    from .factories import is_product, read_product
    from .links import SkyToPixelLink, product_links
    from .tools import DetectContaminantsTool, DetectSourcesTool

    data_factory("glue-astrodl product (FITS)", identifier=is_product, priority=10000)(read_product)
    for tool in (DetectContaminantsTool, DetectSourcesTool):
        viewer_tool(tool)
        if tool.tool_id not in BqplotImageView.tools:
            BqplotImageView.tools = [*BqplotImageView.tools, tool.tool_id]
    data_exporter("Regions: subset polygons (ds9 .reg, CRTF, FITS)", extension=REGION_SUFFIXES)(export_regions)
    data_exporter("glue-astrodl product (FITS with WCS)", extension=["fits"])(export_fits)
    subset_mask_exporter("Regions: pixel polygons (ds9 .reg, CRTF)", extension=["reg", "crtf"])(export_mask_regions)
    link_helper(category="Astronomy")(SkyToPixelLink)
    autolinker("glue-astrodl products")(product_links)
    _registered = True
