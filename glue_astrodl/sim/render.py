"""Object renderers: the simulator's own (``native``) and a GalSim one.

Both give the same semantics: a star is the PSF restricted to a ``(2R+1)^2`` stamp and a
galaxy is a truncated Sérsic profile (see :mod:`.galaxies`) convolved with that PSF; each
stamp is integrated over pixels, centred on the pixel nearest the object, offset by the
sub-pixel remainder, and scaled so that its pixels sum to the object's total flux.
"""

import numpy as np

from ..core.psf import gaussian_psf, moffat_psf, psf_radius
from .galaxies import TRUNCATION, sersic_b, sersic_extent, sersic_stamp

__all__ = ["PSFModel", "NativeRenderer", "GalSimRenderer", "make_renderer", "add_stamp",
           "galsim_available"]

ENCLOSED = 0.999  # PSF stamps hold at least this fraction of the profile's light


def galsim_available():
    """True when GalSim imports.

    Examples
    --------
    >>> galsim_available() in (True, False)  # renderer="auto" uses GalSim when True
    True
    """
    try:
        import galsim  # noqa: F401
    except Exception:
        return False
    return True


class PSFModel:
    """Circular Gaussian or Moffat PSF with a stamp half-size ``radius`` (pixels).

    Examples
    --------
    >>> psf = PSFModel(fwhm=3.0, profile="moffat", beta=3.0)
    >>> psf.radius, psf.kernel().shape, round(float(psf.kernel().sum()), 6)
    (17, (35, 35), 1.0)
    >>> psf.kernel(dx=0.3).shape  # sub-pixel shift
    (35, 35)
    >>> psf.fine_kernel(3).shape  # point-sampled at 1/3 px, for convolving oversampled stamps
    (103, 103)
    """

    def __init__(self, fwhm, profile="moffat", beta=3.0, radius=None):
        if profile not in ("gaussian", "moffat"):
            raise ValueError(f"unknown PSF profile {profile!r}; use 'gaussian' or 'moffat'")
        if fwhm <= 0 or (profile == "moffat" and beta <= 1):
            raise ValueError(f"need FWHM > 0 and beta > 1, got {fwhm}, {beta}")
        self.fwhm, self.profile, self.beta = float(fwhm), profile, float(beta)
        self.radius = self._radius() if radius is None else int(radius)
        self._fine = {}

    def _radius(self):
        if self.profile == "gaussian":
            return psf_radius(self.fwhm, "gaussian")
        # Moffat encircled energy: 1 - (1 + r^2/alpha^2)^(1 - beta)
        a = self.fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / self.beta) - 1.0))
        r = a * np.sqrt((1.0 - ENCLOSED) ** (1.0 / (1.0 - self.beta)) - 1.0)
        return int(np.clip(np.ceil(r), 2, 64))

    def kernel(self, dx=0.0, dy=0.0, oversample=5):
        """Unit-sum pixel-integrated kernel, centre shifted by ``(dx, dy)`` pixels."""
        if self.profile == "gaussian":
            return gaussian_psf(self.fwhm, self.radius, oversample, dx, dy)
        return moffat_psf(self.fwhm, self.beta, self.radius, oversample, dx, dy)

    def fine_kernel(self, oversample):
        """Unit-sum kernel point-sampled at spacing ``1/oversample`` (for convolution)."""
        k = self._fine.get(oversample)
        if k is None:
            r, f = self.radius * oversample, self.fwhm * oversample
            if self.profile == "gaussian":
                k = gaussian_psf(f, radius=r, oversample=1)
            else:
                k = moffat_psf(f, self.beta, radius=r, oversample=1)
            self._fine[oversample] = k
        return k

    def galsim(self):
        """The same profile as a unit-flux GalSim object (untruncated: stamps truncate it)."""
        import galsim

        if self.profile == "gaussian":
            return galsim.Gaussian(fwhm=self.fwhm)
        return galsim.Moffat(self.beta, fwhm=self.fwhm)


def _centre(x, y):
    ix, iy = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
    return ix, iy, x - ix, y - iy


def galaxy_half_size(psf, n, r_eff):
    """Half-size (pixels) of a galaxy stamp holding the profile and the PSF wings.

    Examples
    --------
    >>> galaxy_half_size(PSFModel(3.0, "moffat", 3.0), n=1.0, r_eff=2.0)  # Sersic extent + PSF radius + 1
    34
    """
    return int(np.ceil(sersic_extent(n, r_eff))) + psf.radius + 1


def galaxy_oversample(r_eff, q):
    """Sub-sampling factor: finer for compact galaxies, where the profile varies in a pixel.

    Examples
    --------
    >>> galaxy_oversample(2.0, 0.5), galaxy_oversample(4.0, 1.0)
    (5, 3)
    """
    return 5 if r_eff * np.sqrt(q) < 2.5 else 3


class NativeRenderer:
    """NumPy/SciPy renderer (pixel integration by ``oversample``-fold sub-sampling).

    Examples
    --------
    >>> renderer = NativeRenderer(PSFModel(3.0, "moffat", 3.0))
    >>> stamp, x0, y0 = renderer.star(1000.0, 10.3, 20.0)  # lower-left pixel (x0, y0)
    >>> stamp.shape, (x0, y0), round(float(stamp.sum()), 6)
    ((35, 35), (-7, 3), 1000.0)
    >>> stamp, x0, y0 = renderer.galaxy(1000.0, 10.3, 20.0, n=1.0, r_eff=2.0, q=0.7, theta=45.0)
    >>> stamp.shape, round(float(stamp.sum()), 6)
    ((69, 69), 1000.0)
    """

    name = "native"

    def __init__(self, psf):
        self.psf = psf

    def star(self, flux, x, y):
        """``(stamp, x0, y0)``: pixel-integrated PSF of ``flux`` at ``(x, y)``."""
        ix, iy, dx, dy = _centre(x, y)
        r = self.psf.radius
        return flux * self.psf.kernel(dx, dy), ix - r, iy - r

    def galaxy(self, flux, x, y, n, r_eff, q, theta):
        """``(stamp, x0, y0)``: PSF-convolved Sérsic galaxy of total ``flux`` at ``(x, y)``."""
        ix, iy, dx, dy = _centre(x, y)
        half = galaxy_half_size(self.psf, n, r_eff)
        os_ = galaxy_oversample(r_eff, q)
        stamp = sersic_stamp(flux, n, r_eff, q, theta, 2 * half + 1, dx, dy, os_,
                             psf=self.psf.fine_kernel(os_))
        return stamp, ix - half, iy - half


class GalSimRenderer:
    """GalSim renderer (``drawImage`` with the exact pixel response), same stamps and fluxes.

    Examples
    --------
    >>> renderer = GalSimRenderer(PSFModel(3.0, "moffat", 3.0))  # needs GalSim
    >>> stamp, x0, y0 = renderer.star(1000.0, 10.3, 20.0)  # same stamps as NativeRenderer
    >>> stamp.shape, (x0, y0), round(float(stamp.sum()), 6)
    ((35, 35), (-7, 3), 1000.0)
    """

    name = "galsim"

    def __init__(self, psf):
        import galsim

        self._galsim = galsim
        self.psf = psf
        self._psf_obj = psf.galsim()

    def _draw(self, obj, half, dx, dy, flux):
        n = 2 * half + 1
        img = obj.drawImage(nx=n, ny=n, scale=1.0, offset=(dx, dy), dtype=np.float64).array
        total = img.sum()
        return img * (flux / total) if total > 0 else img

    def star(self, flux, x, y):
        ix, iy, dx, dy = _centre(x, y)
        r = self.psf.radius
        return self._draw(self._psf_obj.withFlux(flux), r, dx, dy, flux), ix - r, iy - r

    def galaxy(self, flux, x, y, n, r_eff, q, theta):
        gs = self._galsim
        ix, iy, dx, dy = _centre(x, y)
        half = galaxy_half_size(self.psf, n, r_eff)
        sq = np.sqrt(q)  # galsim shears preserve area: circular radii scale by sqrt(q)
        r0 = r_eff / float(sersic_b(n)) ** n
        gal = gs.Sersic(n, scale_radius=r0 * sq, trunc=TRUNCATION * r_eff * sq, flux=flux)
        gal = gal.shear(q=q, beta=theta * gs.degrees)
        obj = gs.Convolve([gal, self._psf_obj])
        return self._draw(obj, half, dx, dy, flux), ix - half, iy - half


def make_renderer(name, psf):
    """Renderer for ``name`` in {'auto', 'native', 'galsim'} ('auto': GalSim if importable).

    Examples
    --------
    >>> psf = PSFModel(3.0, "gaussian")
    >>> make_renderer("native", psf).name
    'native'
    >>> make_renderer("auto", psf).name == ("galsim" if galsim_available() else "native")
    True
    """
    if name == "auto":
        name = "galsim" if galsim_available() else "native"
    if name == "native":
        return NativeRenderer(psf)
    if name == "galsim":
        if not galsim_available():
            raise ImportError("renderer='galsim' needs GalSim (pip install galsim)")
        return GalSimRenderer(psf)
    raise ValueError(f"unknown renderer {name!r}; use 'auto', 'native' or 'galsim'")


def add_stamp(frame, stamp, x0, y0):
    """Add ``stamp`` to ``frame`` with its lower-left pixel at ``(x0, y0)``, clipped at the borders.

    Examples
    --------
    >>> import numpy as np
    >>> frame = np.zeros((16, 16))
    >>> add_stamp(frame, np.ones((5, 5)), x0=-2, y0=3)  # two columns fall off the left edge
    >>> frame.sum(), frame[3:8, 0:3].sum()
    (np.float64(15.0), np.float64(15.0))
    """
    ny, nx = frame.shape
    sy, sx = stamp.shape
    ya, xa = max(y0, 0), max(x0, 0)
    yb, xb = min(y0 + sy, ny), min(x0 + sx, nx)
    if ya >= yb or xa >= xb:
        return
    frame[ya:yb, xa:xb] += stamp[ya - y0:yb - y0, xa - x0:xb - x0]
