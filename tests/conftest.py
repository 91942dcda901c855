import os
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

os.environ.setdefault("ASTRODL_DEVICE", "cpu")


def run_cli(*args, cwd=None):
    """Run ``astrodl`` in a subprocess as a user would; return the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "glue_astrodl.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


def builtin_tasks():
    """The tasks glue-astrodl ships, which a fresh process (``astrodl``, glue) has: not the toy
    tasks some test modules register in this process."""
    from glue_astrodl.tasks.registry import tasks

    return [t for t in tasks() if t.module.startswith("glue_astrodl.")]


@pytest.fixture(scope="session")
def star_field():
    """A small simulated frame with isolated point sources (truth included)."""
    from glue_astrodl.sim import simulate_point_sources

    return simulate_point_sources((256, 256), snr=(9, 15, 30), n_per_snr=6, fwhm=2.5, seed=3)


@pytest.fixture
def star_fits(tmp_path, star_field):
    path = tmp_path / "stars.fits"
    star_field.write(path)
    return path


def noise_image(shape=(128, 128), seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    img = 100 + 5 * rng.normal(size=shape)
    return img.astype(dtype)


def write_fits(path, data, header=None):
    fits.PrimaryHDU(data, header).writeto(path, overwrite=True)
    return path
