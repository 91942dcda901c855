"""Inference-time graph simplification: fold BatchNorm into the preceding convolution.

In eval mode a BatchNorm is an affine map per channel, so ``BN(conv(x))`` is one
convolution with rescaled weights and a bias. Folding it removes a full pass over every
activation map, which is what CPU inference of small nets is bound by.
"""

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["fold_batchnorm"]


def fold_batchnorm(model):
    """A copy of ``model`` (eval mode) with every ``Conv2d`` -> ``BatchNorm2d`` pair of a
    ``Sequential`` fused into one ``Conv2d``; outputs are unchanged up to rounding.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()).eval()
    >>> net[1].running_mean.uniform_(-1, 1), net[1].running_var.uniform_(0.5, 2)  # doctest: +ELLIPSIS
    (tensor(...), tensor(...))
    >>> fused = fold_batchnorm(net)
    >>> fused
    Sequential(
      (0): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
      (1): Identity()
      (2): ReLU()
    )
    >>> x = torch.rand(1, 1, 8, 8)
    >>> with torch.no_grad():
    ...     torch.allclose(fused(x), net(x), atol=1e-5)
    True
    """
    model = copy.deepcopy(model).eval()
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                seq._modules[a] = fuse_conv_bn_eval(conv, bn)
                seq._modules[b] = nn.Identity()
    return model
