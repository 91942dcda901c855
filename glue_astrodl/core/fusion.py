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
    ``Sequential`` fused into one ``Conv2d``; outputs are unchanged up to rounding."""
    model = copy.deepcopy(model).eval()
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                seq._modules[a] = fuse_conv_bn_eval(conv, bn)
                seq._modules[b] = nn.Identity()
    return model
