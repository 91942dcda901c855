"""A network's logits as calibrated, prior-corrected probabilities, computed on the device.

``sigmoid(a * logit + b + shift)`` of the selected output channels: Platt scaling
``(a, b)`` from a model card's ``calibration`` (identity where it has none), then the
log-odds ``shift`` from the card's training priors to the user's
(`glue_astrodl.core.calibration.prior_shift_logit`). Wrapped around the network inside the
tiled inference, it works tile by tile on the device instead of over the whole cube on
the host.
"""

import numpy as np
import torch

__all__ = ["CalibratedSigmoid"]


class CalibratedSigmoid(torch.nn.Module):
    """``net`` -> calibrated probabilities of its output ``channels`` (float32).

    Examples
    --------
    >>> import torch
    >>> from glue_astrodl.core.calibration import prior_shift_logit
    >>> net = torch.nn.Identity()  # stands in for a network emitting 2 logit maps
    >>> shift = prior_shift_logit(0.5, 0.01)  # trained at 50%, data at 1%
    >>> calibrated = CalibratedSigmoid(net, channels=[1], scaling=[[2.0, 0.0]], shift=[shift])
    >>> logits = torch.zeros(1, 2, 4, 4)
    >>> p = calibrated(logits)
    >>> p.shape, round(float(p[0, 0, 0, 0]), 4)
    (torch.Size([1, 1, 4, 4]), 0.01)
    """

    def __init__(self, net, channels, scaling, shift):
        super().__init__()
        self.net, self.channels = net, list(channels)
        a, b = np.asarray(scaling, np.float32).reshape(-1, 2).T
        b = b + np.asarray(shift, np.float32)
        self.register_buffer("a", torch.from_numpy(a)[None, :, None, None])
        self.register_buffer("b", torch.from_numpy(b)[None, :, None, None])

    def forward(self, x):
        return torch.sigmoid(self.net(x)[:, self.channels].float() * self.a + self.b)
