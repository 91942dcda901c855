"""Manifest of the real frames used as backgrounds for injected contaminants: provenance and split.

Nothing is downloaded at run time. Each frame is read from an installed registry package
(``kind`` 'pip': ``path`` relative to site-packages) or from this repository (``kind``
'repo': ``path`` relative to the repository root). A *unit* is one detector readout (an
HDU, or a plane of a multi-chip cube) and the split is by unit: no pixel of a 'test' unit
is ever cut into a training tile (`glue_astrodl.sim.real_backgrounds`). ``zero`` is the
pedestal (bias) of raw frames, ``active`` the ``[y0, y1, x0, x1]`` section that holds sky
(overscan excluded), ``fwhm`` a rough PSF FWHM in pixels for injected trails and ghosts,
``own_crs`` whether the frame holds its own cosmic rays (masked out of the loss), found
by L.A.Cosmic with the frame's ``lacosmic`` settings (sharp, undersampled or crowded star
fields need a higher ``objlim`` not to lose their stars to the ignore mask). ``own_classes``:
other contaminant classes the frame itself holds, so it is not free of them (no false-alarm
gate for them on it).

Install the packages that hold them::

    pip install ccdproc astroscrappy spherical_geometry astroquery stsci.tools

astropy (a dependency) ships ``comp.fits`` and ``m13.fits``; ``tests/data/m51_iraf_dev_pix.fits.gz``
(IRAF ``dev$pix`` from Debian's ``iraf`` 2.17-4: ``apt-get download iraf && dpkg -x``) is
in the repository; stsci.tools 4.3.1 ships the 4-chip WFPC2 cube.

Searched without a usable frame: drizzlepac 3.11 (PSF models, 10x10 samples), acstools,
stsci.tools' ``acs_test.fits`` (all zeros), astroimtools, aplpy, ginga, imexam, astrocut,
stwcs, calcos, Debian's iraf and iraf-noao (``wpix``/``ypix`` are ``dev$pix`` again). No
drizzled (correlated-noise) optical frame was found: the radio map is the only
correlated-noise unit, and it is held out.
"""

__all__ = ["VERSION", "INSTALL", "FRAMES"]

VERSION = 'glue_astrodl.sim.real_frames/1'
INSTALL = 'pip install ccdproc astroscrappy spherical_geometry astroquery stsci.tools'

_HST = "HST archival data, public"


def _pip(package, version, path, hdu, licence, **kw):
    return dict(kind="pip", package=package, version=version, path=path, hdu=hdu, plane=None,
                licence=f"BSD-3-Clause ({package})" + (f"; {licence}" if licence else ""), zero=0.0, **kw)


def _wfpc2(chip, plane, split, scene, fwhm):
    """One chip of the 4-chip WFPC2 cube (omega Cen, F555W, 100 s, calibrated c0f): chips do not
    overlap on the sky, so a chip is a unit of its own."""
    return dict(_pip("stsci.tools", "4.3.1", "stsci/tools/tests/data/u40x010hm_c0f.fits", 0, _HST),
                id=f"wfpc2_omegacen_{chip.lower()}", split=split, plane=plane, telescope="HST",
                instrument=f"WFPC2 {chip} F555W, 100 s c0f", shape=[800, 800], scene=scene, own_crs=True, fwhm=fwhm,
                lacosmic=dict(sigclip=8.0, objlim=40.0))  # undersampled stars are sharp: flag only clear CRs


FRAMES = [
    dict(_pip("astropy", "8.0.2", "astropy/io/fits/tests/data/comp.fits", 1, ""), id="ngc1316_photographic",
         split="train", telescope="photographic plate scan (AIPS test image)", instrument="photographic",
         shape=[300, 440], scene="large early-type galaxy (NGC 1316) filling the frame", own_crs=False, fwhm=3.0),
    dict(_pip("astropy", "8.0.2", "astropy/io/fits/hdu/compressed/tests/data/m13.fits", 0, ""), id="m13_photographic",
         split="train", telescope="photographic survey plate (DSS-like)", instrument="photographic", shape=[300, 300],
         scene="globular cluster M13: crowded field", own_crs=False, fwhm=3.0),
    dict(_pip("spherical_geometry", "1.4.0", "spherical_geometry/tests/data/j8bt06nyq_flt.fits", 1, _HST),
         id="acs_hrc_47tuc", split="train", telescope="HST", instrument="ACS/HRC F606W, 60 s flt", shape=[1024, 1024],
         scene="47 Tuc (NGC 104): crowded field, single exposure", own_crs=True, fwhm=2.0,
         lacosmic=dict(sigclip=6.0, objlim=15.0)),
    _wfpc2("PC1", 0, "train", "omega Cen: crowded field, single exposure", 2.0),
    _wfpc2("WF2", 1, "train", "omega Cen: crowded field, undersampled PSF (0.1 arcsec px)", 1.3),
    _wfpc2("WF3", 2, "train", "omega Cen: crowded field, undersampled PSF (0.1 arcsec px)", 1.3),
    dict(_pip("astroquery", "0.4.11", "astroquery/ukidss/tests/data/image.fits", 1, ""), id="ukidss_ir", split="train",
         telescope="UKIRT", instrument="WFCAM (UKIDSS cutout, near-IR)", shape=[300, 300],
         scene="near-IR survey cutout, sky-dominated", own_crs=False, fwhm=2.5),
    # held out: whole units, never cut into training tiles
    dict(kind="repo", package="iraf (Debian)", version="2.17-4", path="tests/data/m51_iraf_dev_pix.fits.gz", hdu=0,
         plane=None, licence="IRAF licence (AURA), see tests/data/README.md", zero=0.0, id="m51_kpno", split="test",
         telescope="KPNO", instrument="CCD, B band, 600 s", shape=[512, 512],
         scene="large nearby spiral galaxy (M51) filling the frame", own_crs=False, fwhm=2.5),
    dict(_pip("ccdproc", "2.5.1", "ccdproc/tests/data/a8280271.fits", 0, ""), id="saao_raw", split="test",
         telescope="SAAO 1.0 m", instrument="STE3 CCD, raw", shape=[520, 536],
         scene="raw sky-dominated field with cosmic rays and overscan strips", own_crs=True, zero=214.0,
         active=[0, 512, 1, 528], fwhm=3.0, own_classes=["OV"]),  # BIASSEC [4:13] stays in the section
    dict(_pip("astroscrappy", "1.3.0", "astroscrappy/tests/data/gmos.fits", 1, ""), id="gmos_spectrum", split="test",
         telescope="Gemini-South", instrument="GMOS-S, 90 s", shape=[150, 200],
         scene="long-slit spectrum (out of domain), cosmic rays checked by astroscrappy's tests", own_crs=True,
         fwhm=3.0),
    dict(_pip("astroquery", "0.4.11", "astroquery/magpis/tests/data/image.fits", 0, ""), id="magpis_radio",
         split="test", telescope="Effelsberg (MAGPIS cutout)", instrument="radio continuum, Jy/beam", shape=[300, 300],
         scene="radio map: correlated (beam-smoothed) noise, out of domain", own_crs=False, fwhm=4.0),
    _wfpc2("WF4", 3, "test", "omega Cen: crowded field, undersampled PSF; a separate chip of a training exposure", 1.3),
]
