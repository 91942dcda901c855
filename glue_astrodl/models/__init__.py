"""torch modules only (no file or viewer code); importing registers the architectures."""

from . import contaminant_net, matched_filter  # noqa: F401
