"""Test-time augmentation over the symmetries of the square (core.symmetry)."""

import pytest
import torch

from glue_astrodl.core.symmetry import DihedralMean
from glue_astrodl.models.contaminant_net import ContaminantNet


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return ContaminantNet(n_classes=3, widths=(4, 4, 4, 4, 4)).eval()


def _rot(x):
    return torch.rot90(x, 1, dims=(-2, -1))


def _flip(x):
    return torch.flip(x, dims=(-1,))


def test_average_over_all_eight_is_exactly_equivariant(net):
    """A plain CNN is not; its mean over the group commutes with every rotation and flip."""
    x = torch.randn(1, 1, 48, 32)  # not square: rotated views are 32 x 48
    full = DihedralMean(net, 8)
    with torch.inference_mode():
        y = full(x)
        assert y.shape == (1, 3, 48, 32)
        torch.testing.assert_close(full(_rot(x)), _rot(y), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(full(_flip(x)), _flip(y), atol=1e-5, rtol=1e-5)
        assert (net(_rot(x)) - _rot(net(x))).abs().max() > 1e-3  # the net alone is not


def test_fewer_symmetries_are_the_subgroups(net):
    x = torch.randn(2, 1, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(DihedralMean(net, 1)(x), net(x))
        torch.testing.assert_close(DihedralMean(net, 2)(x), (net(x) + _flip(net(_flip(x)))) / 2)
        four = DihedralMean(net, 4)
        torch.testing.assert_close(four(_rot(x)), _rot(four(x)), atol=1e-5, rtol=1e-5)  # rotations only
        assert (four(_flip(x)) - _flip(four(x))).abs().max() > 1e-3


def test_unknown_number_of_symmetries(net):
    with pytest.raises(ValueError, match="one of"):
        DihedralMean(net, 3)
