"""BatchNorm folding keeps the network's outputs and leaves the original model alone."""

import torch

from glue_astrodl.core.fusion import fold_batchnorm
from glue_astrodl.models.contaminant_net import ContaminantNet


def test_folded_net_matches_and_has_no_batchnorm():
    torch.manual_seed(1)
    net = ContaminantNet(widths=(4, 6, 8, 8, 8))
    for m in net.modules():  # non-trivial running statistics and affine parameters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    net.eval()
    folded = fold_batchnorm(net)
    x = torch.randn(2, 1, 48, 64)
    with torch.inference_mode():
        torch.testing.assert_close(folded(x), net(x), atol=1e-4, rtol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 17
