"""Test-time augmentation: average a per-pixel model over the symmetries of the square.

A detector's image has no preferred orientation for cosmic rays, trails or defects, so
the eight rotations and reflections of a tile are equally valid inputs. Running the
model on each, undoing the transform on its output and averaging the outputs cancels
part of the model's orientation-dependent error. The cost is one forward pass per
symmetry.
"""

import torch
from torch import nn

from .errors import BadInputError

__all__ = ["DihedralMean", "SYMMETRIES", "check_symmetries"]

SYMMETRIES = (1, 2, 4, 8)  # identity; + horizontal flip; the four rotations; all eight


def check_symmetries(n):
    """``n`` if it is a number of symmetries `DihedralMean` averages (`SYMMETRIES`), else a
    one-line `BadInputError`.

    Examples
    --------
    >>> check_symmetries(8)
    8
    """
    if n not in SYMMETRIES:
        raise BadInputError(f"tta must be one of {', '.join(map(str, SYMMETRIES))} (symmetries averaged), got {n!r}")
    return n


def _views(n):
    """The first ``n`` elements of the dihedral group as ``(quarter_turns, flip)``:
    n=2 adds the mirror image, n=4 the rotations, n=8 both."""
    return {1: [(0, False)], 2: [(0, False), (0, True)],
            4: [(k, False) for k in range(4)], 8: [(k, f) for k in range(4) for f in (False, True)]}[n]


class DihedralMean(nn.Module):
    """``model`` averaged over ``n`` symmetries of the square (1, 2, 4 or 8).

    ``(B, C, H, W)`` -> the mean of ``T^-1(model(T(x)))``; outputs must be per-pixel maps
    of the input's height and width (any H, W: rotated tiles are W x H).

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Conv2d(1, 1, 3, padding=1)  # not symmetric itself
    >>> tta = DihedralMean(net, n=8)
    >>> x = torch.rand(1, 1, 8, 6)
    >>> with torch.no_grad():
    ...     y, y_mirror = tta(x), tta(x.flip(-1))
    >>> y.shape, torch.allclose(y_mirror, y.flip(-1), atol=1e-6)  # the average is symmetric
    (torch.Size([1, 1, 8, 6]), True)
    """

    def __init__(self, model, n=8):
        super().__init__()
        if n not in SYMMETRIES:
            raise ValueError(f"number of symmetries must be one of {SYMMETRIES}, got {n}")
        self.model, self.views = model, _views(n)

    def forward(self, x):
        total = None
        for turns, flip in self.views:
            v = torch.rot90(x, turns, dims=(-2, -1))
            v = torch.flip(v, dims=(-1,)) if flip else v
            y = self.model(v.contiguous(memory_format=torch.channels_last))
            y = torch.flip(y, dims=(-1,)) if flip else y
            y = torch.rot90(y, -turns, dims=(-2, -1)).float()
            total = y if total is None else total + y
        return total / len(self.views)
