"""False-alarm gates of the shipped contaminant model on frames it never trained on (issue 14).

At the default priors and thresholds, on a frame free of a class, at most 0.5% of the
pixels may be flagged FR, BBG, NEB, TRL, SP, P, OV, HCL or DCL, and at most 0.05% HP, DP
or CR (`glue_astrodl.train.real_frame_sets.LIMITS`). The real frames are the held-out units
of `glue_astrodl.sim.real_frames` that a survey or instrument user would bring: a large
spiral galaxy filling a KPNO CCD frame, a raw SAAO frame, and a crowded, undersampled
WFPC2 chip. The long-slit spectrum and the radio map, also held out, are out of the
model's domain: their fractions are in benchmarks/README.md beside MaxiMask's, ungated.
A frame's own classes (its cosmic rays, the SAAO frame's overscan) are not gated on it.
"""

import pytest

from glue_astrodl.sim.real_backgrounds import _entry, frame_path
from glue_astrodl.tasks.contaminants import detect_contaminants
from glue_astrodl.train.real_frame_sets import IN_DOMAIN, LIMITS, false_alarms, gradient_frame

GATED_FRAMES = IN_DOMAIN
#: Seeds of simulated 1024x1024 frames whose gradient reaches 8-10% of the sky (peak to mean).
GRADIENT_SEEDS = (3, 9, 14)


def _over(fractions):
    return {c: round(100 * v, 3) for c, v in fractions.items() if c in LIMITS and v is not None and v > LIMITS[c]}


@pytest.fixture(scope="module")
def alarms():
    return false_alarms(ids=GATED_FRAMES)


#: Where the shipped model (1.2) misses the gate (percent of pixels flagged, 2026-12-02);
#: strict, so the test fails once a model meets it and the entry must go.
FAILING = {
    "m51_kpno": "BBG 93.9, NEB 76.2, FR 5.7, TRL 4.8, SP 4.5: the galaxy's light taken for bright background",
    "wfpc2_omegacen_wf4": "TRL 6.8, OV 4.8, SP 3.8, BBG 1.6 on a crowded, undersampled star field",
    3: "OV 2.3 under a gradient of 9.7% of the sky",
    9: "BBG 83.2 under a gradient of 8.4% of the sky",
    14: "BBG 27.0, OV 9.2, SP 0.7 under a gradient of 8.9% of the sky",
}


def _known(cases):
    return [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=FAILING[c])) if c in FAILING else c
            for c in cases]


@pytest.mark.parametrize("frame", _known(GATED_FRAMES))
def test_few_false_alarms_on_held_out_real_frames(alarms, frame):
    if frame_path(frame) is None:
        pytest.skip(f"real frame {frame} is not installed: pip install {_entry(frame)['package']}")
    over = _over(alarms[frame])
    assert not over, f"{frame}: percent of pixels flagged above the gate: {over}"


@pytest.mark.parametrize("seed", _known(GRADIENT_SEEDS))
def test_few_false_alarms_on_simulated_sky_gradients(seed):
    """A plain sky gradient (linear plus vignetting, no contaminant) stays background."""
    image, amplitude = gradient_frame(1024, seed=seed)
    assert 0.08 <= amplitude <= 0.1
    over = _over(detect_contaminants(image).flagged_fractions())
    assert not over, f"gradient {100 * amplitude:.1f}% of the sky: percent of pixels flagged above the gate: {over}"
