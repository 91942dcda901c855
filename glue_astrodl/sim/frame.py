"""The simulator's product: a reduced CCD frame with its noiseless model and exact truth."""

from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from ..core.atomic import atomic_path

__all__ = ["SimulatedFrame", "sky_sigma"]


def sky_sigma(sky, gain, read_noise):
    """Per-pixel background noise in ADU: ``sqrt(sky*gain + read_noise^2) / gain``.

    ``sky`` is in ADU, ``gain`` in e-/ADU and ``read_noise`` in electrons.

    Examples
    --------
    >>> sky_sigma(sky=300.0, gain=2.0, read_noise=5.0)  # sqrt(600 + 25) / 2 ADU
    12.5
    """
    return float(np.sqrt(sky * gain + read_noise**2) / gain)


@dataclass
class SimulatedFrame:
    """A simulated frame (all images float32 in ADU) and its truth.

    image: sky + sources with Poisson (in electrons) and read noise.
    noiseless: sky + sources without noise. sources: sources only.
    header: WCS, FWHM (pixels), GAIN (e-/ADU), RDNOISE (e-), SKYLEVEL (ADU), MAGZERO...
    truth: one row per object (see :func:`glue_astrodl.sim.simulate_frame`).
    psf: the unit-sum centred PSF kernel of the frame.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from astropy.io import fits
    >>> from glue_astrodl.sim import simulate_frame
    >>> frame = simulate_frame((64, 64), n_stars=5, n_galaxies=2, seed=0, sky=300.0, gain=2.0, read_noise=5.0)
    >>> frame.sky_sigma, frame.wcs.wcs.ctype[0], frame.psf.shape
    (12.5, 'RA---TAN', (35, 35))
    >>> path = frame.write(Path(tempfile.mkdtemp()) / "frame.fits", truth=True)
    >>> with fits.open(path) as hdul:
    ...     [h.name for h in hdul], len(hdul["TRUTH"].data)
    (['PRIMARY', 'TRUTH'], 7)
    """

    image: np.ndarray
    noiseless: np.ndarray
    sources: np.ndarray
    header: fits.Header
    truth: Table
    psf: np.ndarray

    @property
    def wcs(self):
        """Celestial WCS of the frame."""
        return WCS(self.header)

    @property
    def sky_sigma(self):
        """Background noise per pixel in ADU (sky Poisson noise and read noise)."""
        h = self.header
        return sky_sigma(h["SKYLEVEL"], h["GAIN"], h["RDNOISE"])

    def write(self, path, overwrite=True, truth=False):
        """Write ``image`` and ``header`` as the primary HDU of a FITS file, atomically.

        With ``truth=True`` the truth table is appended as a ``TRUTH`` binary table.
        """
        hdus = [fits.PrimaryHDU(self.image, header=self.header)]
        if truth:
            hdus.append(fits.BinTableHDU(self.truth, name="TRUTH"))
        with atomic_path(path, overwrite=overwrite) as tmp:
            fits.HDUList(hdus).writeto(tmp)
        return path
