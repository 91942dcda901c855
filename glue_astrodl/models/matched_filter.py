"""The matched filter as a fully-convolutional module (FFT convolution per tile).

For an image ``d = F * phi(x - x0) + n`` with noise variance ``sigma^2(x)``, the optimal
linear estimate of the flux of a point source centred on pixel ``x`` is
``F_hat = num / den`` with ``num = sum phi * d / sigma^2`` and
``den = sum phi^2 / sigma^2`` (sums over the PSF footprint), and its significance is
``num / sqrt(den)``, a unit Gaussian where there is no source.
"""

import torch
from torch import nn

__all__ = ["MatchedFilter"]


class MatchedFilter(nn.Module):
    """Correlate ``(B, 2, H, W)`` input ``[d / sigma^2, 1 / sigma^2]`` with ``[phi, phi^2]``.

    Returns ``(B, 2, H, W)``: ``num`` and ``den`` as defined in the module docstring.
    The receptive-field radius is half the kernel size, so tiles need that much overlap.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from glue_astrodl.core.psf import gaussian_psf
    >>> psf = gaussian_psf(2.5)  # 9 x 9
    >>> image = np.zeros((32, 32))
    >>> image[12:21, 12:21] += 100.0 * psf  # a source of flux 100 centred on pixel (16, 16)
    >>> sigma = np.ones_like(image)  # noise map
    >>> mf = MatchedFilter(psf)
    >>> x = torch.tensor(np.stack([image / sigma**2, 1 / sigma**2]))[None]
    >>> num, den = mf(x)[0]
    >>> mf.radius, round(float(num[16, 16] / den[16, 16]), 3)  # flux estimate
    (4, 100.0)
    >>> round(float(num[16, 16] / den[16, 16].sqrt()), 2) == round(100.0 * float(np.sqrt((psf**2).sum())), 2)  # S/N
    True
    """

    def __init__(self, psf):
        super().__init__()
        psf = torch.as_tensor(psf, dtype=torch.float64)
        # correlation = convolution with the flipped kernel
        kernel = torch.stack([psf, psf**2]).flip(-1, -2)
        self.register_buffer("kernel", kernel.float())
        self._spectra = {}

    @property
    def radius(self):
        return max(self.kernel.shape[-2:]) // 2

    def _spectrum(self, shape, device):
        key = (shape, device)
        if key not in self._spectra:
            self._spectra = {key: torch.fft.rfft2(self.kernel.to(device), s=shape)}
        return self._spectra[key]

    def forward(self, x):
        kh, kw = self.kernel.shape[-2:]
        h, w = x.shape[-2:]
        shape = (h + kh - 1, w + kw - 1)
        spec = torch.fft.rfft2(x.float(), s=shape) * self._spectrum(shape, x.device)
        full = torch.fft.irfft2(spec, s=shape)
        return full[..., kh // 2:kh // 2 + h, kw // 2:kw // 2 + w]
