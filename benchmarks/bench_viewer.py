#!/usr/bin/env python
"""Time to results in jdaviz: a task's Run, from the click to the last layer and subset.

A headless ``jdaviz.App()`` loads each frame, then the tray plugin runs (blocking, as its
Python API does) and the plugin's own clock splits the time into running the task and
adding its results to the app (``timings``); the layers, subsets and viewer layers added are
counted. Frames: a simulated 512x512 raw frame (every contaminant class) and, when
``ccdproc`` is installed, its real SAAO 1.0 m frame (520x536). Each run is a fresh process.

    python benchmarks/bench_viewer.py                          # Detect Contaminants, then Detect Sources
    python benchmarks/bench_viewer.py --src /path/to/old/checkout   # the same runs on other code
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
import jdaviz
from jdaviz.core.events import SnackbarMessage
path = sys.argv[1]
app = jdaviz.App()
japp = app._app
errors = []
japp.hub.subscribe(japp, SnackbarMessage, handler=lambda m: m.color == "error" and errors.append(m.text))
app.load(path, format="Image", data_label="frame")
out = {}
for name, kwargs in (("Detect Contaminants", {}), ("Detect Sources", {})):
    plugin = app.plugins[name]
    start = time.perf_counter()
    plugin.run(**kwargs)
    total = time.perf_counter() - start
    obj = plugin._obj
    viewer = japp.get_viewer("Image")
    out[name] = dict(total=total, **getattr(obj, "timings", {}), data=len(japp.data_collection),
                     subsets=len(japp.data_collection.subset_groups),
                     visible=sum(lyr.visible for lyr in viewer.layers), errors=list(errors))
print(json.dumps(out))
"""


def frames(workdir):
    """``{name: FITS path}`` of the benchmark frames."""
    from astropy.io import fits

    from glue_astrodl.sim import simulate_contaminant_frame

    frame = simulate_contaminant_frame((512, 512), seed=3)
    sim = Path(workdir) / "sim512.fits"
    fits.PrimaryHDU(frame.image, frame.header).writeto(sim)
    out = {"simulated 512x512": sim}
    try:
        import ccdproc
    except ImportError:
        return out
    saao = Path(ccdproc.__file__).parent / "tests" / "data" / "a8280271.fits"
    if saao.exists():
        out["SAAO 1.0 m 520x536 (real)"] = saao
    return out


def run(path, src=None):
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    res = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, env=env,
                         timeout=1800, check=False)
    if res.returncode:
        raise SystemExit(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", help="checkout whose glue_astrodl to time instead of this one")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for name, path in frames(workdir).items():
            results[name] = run(path, args.src)
            for plugin, r in results[name].items():
                split = f"run {r['run']:5.1f} s, add {r['add']:5.1f} s" if "run" in r else ""
                print(f"{name:28} {plugin:20} total {r['total']:5.1f} s  {split}  data {r['data']:3d}  "
                      f"subsets {r['subsets']:3d}  visible viewer layers {r['visible']:3d}  errors {len(r['errors'])}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
