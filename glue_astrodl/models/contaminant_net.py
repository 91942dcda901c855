"""Compact fully-convolutional segmentation net for image contaminants.

A small U-Net: full-resolution stem (detector defects are single pixels), four
downsamplings to 1/16, a dilated context block there (trails and fringes need a receptive
field of a few hundred pixels), and a decoder with skip connections back to full
resolution. One logit per class; apply a sigmoid for independent (multi-label)
probabilities. Convolutions are 3x3 with BatchNorm + ReLU, which are fast on CPU and
bf16-friendly on GPU.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register_architecture

__all__ = ["ContaminantNet"]


def _block(cin, cout, dilation=1):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


@register_architecture("contaminant-unet")
class ContaminantNet(nn.Module):
    """``(B, in_channels, H, W)`` -> ``(B, n_classes, H, W)`` logits; any H, W.

    Inputs whose sides are not multiples of 16 are reflect-padded internally.

    Examples
    --------
    >>> import torch
    >>> net = ContaminantNet(n_classes=14).eval()
    >>> with torch.no_grad():
    ...     logits = net(torch.zeros(1, 1, 20, 30))  # any size: padded to multiples of 16 inside
    >>> logits.shape
    torch.Size([1, 14, 20, 30])
    >>> probabilities = torch.sigmoid(logits)  # independent per-class probabilities
    """

    def __init__(self, n_classes=14, in_channels=1, widths=(12, 24, 32, 48, 64), context_dilations=(2, 4, 8)):
        super().__init__()
        w = list(widths)
        self.stem = nn.Sequential(_block(in_channels, w[0]), _block(w[0], w[0]))
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(w[i], w[i + 1], 3, stride=2, padding=1, bias=False),
                          nn.BatchNorm2d(w[i + 1]), nn.ReLU(inplace=True), _block(w[i + 1], w[i + 1]))
            for i in range(len(w) - 1))
        self.context = nn.Sequential(*[_block(w[-1], w[-1], d) for d in context_dilations])
        self.up = nn.ModuleList(_block(w[i + 1] + w[i], w[i]) for i in reversed(range(len(w) - 1)))
        self.head = nn.Conv2d(w[0], n_classes, 1)
        self.stride = 2 ** (len(w) - 1)

    def forward(self, x):
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % self.stride, -w % self.stride
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if min(h, w) > max(pad_h, pad_w) else "replicate")
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = self.context(skips.pop())
        for up in self.up:
            skip = skips.pop()
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = up(torch.cat([y, skip], dim=1))
        return self.head(y)[..., :h, :w]
