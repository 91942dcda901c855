"""A classification scheme as one object: class names, descriptions, bit codes, colours, priors.

Tasks that output per-class maps own a `Taxonomy` (the contaminant task owns MaxiMask's,
`glue_astrodl.tasks.contaminant_classes.MAXIMASK`) and pass it to the FITS writers and the
viewers, which therefore know nothing about any particular scheme.
"""

from dataclasses import dataclass, field

__all__ = ["Taxonomy"]


@dataclass(frozen=True)
class Taxonomy:
    """Classes in plane order, with what the products and viewers need to show them.

    Parameters
    ----------
    classes : tuple of str
        Short class names in plane order (e.g. MaxiMask's ``"CR"``).
    descriptions : dict
        ``{class: long name}`` (e.g. ``"cosmic rays"``).
    colours : dict
        ``{class: hex colour}``, valid in ds9/CRTF and matplotlib.
    default_priors : dict
        ``{class: typical fraction of pixels}``, the default of Bayes' prior correction.
    background : str, optional
        The class meaning "none of the others" (no bit, no subset, no region).
    bits : dict, optional
        ``{class: bit code}`` of single-plane bit-masks; default ``1 << plane index``, and 0
        for the background.

    Examples
    --------
    >>> t = Taxonomy(("A", "B", "BG"), {"A": "alpha", "B": "beta", "BG": "clean"},
    ...              {"A": "#ff0000", "B": "#00ff00", "BG": "#000000"}, {"A": 0.1, "B": 0.1, "BG": 0.8}, "BG")
    >>> t.bits
    {'A': 1, 'B': 2, 'BG': 0}
    >>> t.label("A"), t.foreground
    ('A: alpha', ('A', 'B'))
    """

    classes: tuple
    descriptions: dict
    colours: dict
    default_priors: dict
    background: str = None
    bits: dict = field(default=None)

    def __post_init__(self):
        if self.bits is None:
            bits = {c: (0 if c == self.background else 1 << i) for i, c in enumerate(self.classes)}
            object.__setattr__(self, "bits", bits)

    @property
    def foreground(self):
        """Every class but the background, in plane order."""
        return tuple(c for c in self.classes if c != self.background)

    def label(self, name):
        """``"CR: cosmic rays"``: the short name and what it means."""
        return f"{name}: {self.descriptions[name]}" if name in self.descriptions else name

    def __contains__(self, name):
        return name in self.classes
