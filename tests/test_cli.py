"""The ``astrodl`` command as a user runs it: outputs, exit codes and bad input (DESIGN §6)."""

import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from conftest import noise_image, run_cli, write_fits
from regions import Regions


def test_sources_writes_products_and_regions(star_fits, star_field, tmp_path):
    out, reg = tmp_path / "out.fits", tmp_path / "out.reg"
    res = run_cli("sources", star_fits, "-o", out, "--regions", reg)
    assert res.returncode == 0, res.stderr
    with fits.open(out) as hdul:
        assert hdul[0].data.shape == (1, 256, 256) and hdul[0].header["CLASS1"] == "SOURCE"
        assert hdul[0].header["CTYPE1"].startswith("RA---") and hdul[0].header["CTYPE3"] == "CLASS"
        assert hdul["SIGNIFICANCE"].data.shape == (256, 256)
        table = Table.read(hdul["SOURCES"])
    assert {"x", "y", "ra", "dec", "snr", "flux", "flux_err", "prob"} <= set(table.colnames)
    assert len(table) == len(star_field.truth)
    assert len(Regions.read(reg)) == len(table)
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


def test_default_output_name_and_skip_on_rerun(star_fits):
    first = run_cli("sources", star_fits)
    assert first.returncode == 0, first.stderr
    out = star_fits.parent / "stars_sources.fits"
    assert out.exists()
    again = run_cli("sources", star_fits)
    assert again.returncode == 0 and "skipped" in again.stdout


def test_info():
    info = run_cli("info")
    assert info.returncode == 0 and "device: cpu" in info.stdout and "torch" in info.stdout


def test_models_lists_every_card_with_its_task_version_and_checksum(tmp_path):
    """``astrodl models`` names each shipped model with its version and task, its outputs,
    the checksum of the weights (computed here from the file) and the card's path; models
    in $ASTRODL_WEIGHTS_PATH follow, and an unreadable card is one warning line, not a
    failure."""
    import hashlib
    import json
    import os
    from pathlib import Path

    import glue_astrodl
    from glue_astrodl.tasks.registry import tasks

    shipped = sorted((Path(glue_astrodl.__file__).parent / "weights").glob("*.json"))
    extra = json.loads(shipped[0].read_text())
    extra.update(name="my-model", version="7.3", task="sources", description="")
    (tmp_path / "my-model.json").write_text(json.dumps(extra))
    (tmp_path / "broken.json").write_text("{not json")
    res = subprocess.run([sys.executable, "-m", "glue_astrodl.cli", "models"], capture_output=True, text=True,
                         env=dict(os.environ, ASTRODL_WEIGHTS_PATH=str(tmp_path)), timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip().splitlines() == [(
        f"astrodl: warning: skipping model card: {tmp_path / 'broken.json'}: model card is not valid JSON "
        "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1))")]
    lines = res.stdout.splitlines()
    names = [line.split()[0] for line in lines if not line.startswith(" ")]
    assert names == [json.loads(p.read_text())["name"] for p in shipped] + ["my-model"]
    assert {m for t in tasks() for m in t.models} <= set(names)  # every task's model is installed
    for path in shipped:
        card = json.loads(path.read_text())
        start = lines.index(f"{card['name']} {card['version']} (task {card['task']}): {card['description']}")
        block = lines[start:start + 3]
        assert block[1] == f"  architecture {card['architecture']}, outputs {', '.join(card['outputs'])}"
        sha = hashlib.sha256(path.with_suffix(".safetensors").read_bytes()).hexdigest()
        # the card of the installed package (site-packages in CI, where this process imports the checkout)
        assert block[2].startswith(f"  sha256 {sha}  card /"), block[2]
        assert block[2].endswith(f"/glue_astrodl/weights/{path.name}"), block[2]
        for key in card.get("metrics", {}):
            assert f"  {key}: {card['metrics'][key]}" in lines[start:]
    assert "my-model 7.3 (task sources)" in lines  # no dangling ': ' without a description


def _bad(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, fits.HDUList):
        content.writeto(path)
    else:
        write_fits(path, content)
    return path


def _truncated(tmp_path):
    full = write_fits(tmp_path / "full.fits", noise_image((256, 256)))
    data = full.read_bytes()
    full.unlink()
    return data[: len(data) // 2]


BAD_CASES = {
    "not-fits": (lambda t: b"SIMPLE? no, this is a text file\n" * 200, "not a FITS file"),
    "empty": (lambda t: b"", "empty or truncated"),
    "truncated": (_truncated, "truncated"),
    "table-only": (lambda t: fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(Table({"a": [1, 2]}))]), "no image HDU"),
    "one-d": (lambda t: np.arange(100.0), "1-D data"),
    "cube": (lambda t: np.stack([noise_image()] * 3), "data cube"),
    "all-nan": (lambda t: np.full((64, 64), np.nan, np.float32), "no usable pixels"),
    "all-zero": (lambda t: np.zeros((64, 64), np.float32), "constant image"),
    "constant": (lambda t: np.full((64, 64), 7.0), "constant image"),
    "tiny": (lambda t: noise_image((5, 5)), "too small"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_one_line_exit_2_no_output(tmp_path, case):
    make, expected = BAD_CASES[case]
    path = _bad(tmp_path, f"{case}.fits", make(tmp_path))
    out = tmp_path / "result.fits"
    res = run_cli("sources", path, "-o", out, "--fwhm", "3", "--regions", tmp_path / "r.reg")
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert str(path) in lines[0] and expected in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_missing_file_and_glob_without_match(tmp_path):
    for arg in [tmp_path / "nope.fits", tmp_path / "*.fits"]:
        res = run_cli("sources", arg)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1


def test_cube_plane_is_processed(tmp_path, star_field):
    cube = np.stack([noise_image((256, 256)), star_field.image])
    path = write_fits(tmp_path / "cube.fits", cube, star_field.header)
    res = run_cli("sources", path, "--plane", "1", "-o", tmp_path / "o.fits")
    assert res.returncode == 0, res.stderr
    assert len(Table.read(tmp_path / "o.fits", hdu="SOURCES")) == len(star_field.truth)


@pytest.mark.parametrize("dtype", [">f4", ">i2", "<i4", ">f8", "uint16"])
def test_integer_and_big_endian_data(tmp_path, star_field, dtype):
    data = np.clip(star_field.image, 0, 30000).astype(dtype)
    path = write_fits(tmp_path / "img.fits", data, star_field.header)
    res = run_cli("sources", path, "-o", tmp_path / "o.fits")
    assert res.returncode == 0, res.stderr
    assert len(Table.read(tmp_path / "o.fits", hdu="SOURCES")) == len(star_field.truth)


def test_nan_and_inf_pixels_are_missing_not_fatal(tmp_path, star_field):
    data = star_field.image.copy()
    data[:40, :] = np.nan
    data[100, 100:110] = np.inf
    path = write_fits(tmp_path / "holes.fits", data, star_field.header)
    res = run_cli("sources", path, "-o", tmp_path / "o.fits")
    assert res.returncode == 0, res.stderr
    with fits.open(tmp_path / "o.fits") as hdul:
        prob = hdul[0].data[0]
        assert np.isnan(prob[:40]).all() and np.isnan(prob[100, 100:110]).all()
        assert np.isfinite(prob[60:100]).all() and np.isfinite(prob[101:]).all()


def test_no_or_broken_wcs_works_in_pixels(tmp_path, star_field):
    broken = star_field.header.copy()
    broken["CTYPE1"], broken["CTYPE2"] = "RA---XYZ", "DEC--XYZ"
    for name, header in [("nowcs", None), ("broken", broken)]:
        path = write_fits(tmp_path / f"{name}.fits", star_field.image, header)
        res = run_cli("sources", path, "--fwhm", "2.5", "-o", tmp_path / f"{name}_o.fits", "--regions", tmp_path / f"{name}.reg")
        assert res.returncode == 0, res.stderr
        assert "pixel coordinates" in res.stdout
        table = Table.read(tmp_path / f"{name}_o.fits", hdu="SOURCES")
        assert "ra" not in table.colnames and len(table) == len(star_field.truth)
        assert all(type(r).__name__ == "CirclePixelRegion" for r in Regions.read(tmp_path / f"{name}.reg"))


def test_image_smaller_than_a_tile(tmp_path, star_field):
    path = write_fits(tmp_path / "small.fits", star_field.image[:40, :60], star_field.header)
    assert run_cli("sources", path, "-o", tmp_path / "o.fits").returncode == 0


def test_compressed_input(tmp_path, star_field):
    path = tmp_path / "img.fits.fz"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(star_field.image, star_field.header)]).writeto(path)
    res = run_cli("sources", path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "img_sources.fits").exists()


# ---- options, in this process (``main`` is what the ``astrodl`` script runs) ----

def astrodl(capsys, *args):
    """``astrodl *args`` in this process: ``(exit code, stdout, stderr)``."""
    from glue_astrodl.cli import main

    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _sources(path):
    return Table.read(path, hdu="SOURCES")


def test_hdu_picks_the_named_or_numbered_extension(tmp_path, star_field, capsys):
    """--hdu SCI / --hdu 2 measure the stars of that extension (its data and its WCS), not the
    first image HDU (pure noise here, without a WCS); a missing HDU is bad input."""
    mef = tmp_path / "mef.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(noise_image((256, 256), seed=5), name="NOISE"),
                  fits.ImageHDU(star_field.image, star_field.header, name="SCI")]).writeto(mef)
    plain = write_fits(tmp_path / "plain.fits", star_field.image, star_field.header)
    assert astrodl(capsys, "sources", plain, "-o", tmp_path / "plain_out.fits", "--quiet")[0] == 0
    expected = _sources(tmp_path / "plain_out.fits")
    for hdu in ("SCI", "2"):
        out = tmp_path / f"hdu_{hdu}.fits"
        code, _, err = astrodl(capsys, "sources", mef, "--hdu", hdu, "-o", out, "--quiet")
        assert code == 0, err
        table = _sources(out)
        assert len(table) == len(star_field.truth)
        np.testing.assert_allclose(table["x"], expected["x"])
        np.testing.assert_allclose(table["ra"], expected["ra"])
        assert fits.getheader(out)["CTYPE1"] == "RA---TAN"
    code, _, err = astrodl(capsys, "sources", mef, "--fwhm", "2.5", "-o", tmp_path / "first.fits", "--quiet")
    assert code == 0, err
    assert len(_sources(tmp_path / "first.fits")) < 3 and "ra" not in _sources(tmp_path / "first.fits").colnames
    for hdu, line in (("7", f"{mef}: no HDU 7 (file has 3 HDUs)"), ("0", f"{mef}[0]: not an image HDU (PrimaryHDU)")):
        code, _, err = astrodl(capsys, "sources", mef, "--hdu", hdu, "-o", tmp_path / "bad.fits")
        assert code == 2 and err.splitlines() == [f"astrodl: error: {line}"], err
    assert not (tmp_path / "bad.fits").exists()


def test_overwrite_replaces_an_output_that_is_otherwise_skipped(star_fits, capsys):
    out = star_fits.parent / "out.fits"
    assert astrodl(capsys, "sources", star_fits, "-o", out, "--quiet")[0] == 0
    first = out.read_bytes()
    assert len(_sources(out)) == 18
    code, stdout, _ = astrodl(capsys, "sources", star_fits, "-o", out, "--threshold", "20")
    assert code == 0 and stdout.strip() == f"{out}: skipped (output exists)"
    assert out.read_bytes() == first
    code, stdout, _ = astrodl(capsys, "sources", star_fits, "-o", out, "--threshold", "20", "--overwrite")
    assert code == 0 and stdout.startswith(f"{out}: done (6 sources at S/N >= 20")
    assert len(_sources(out)) == 6 and not [p for p in out.parent.iterdir() if ".part" in p.name]


def test_threshold_keeps_the_sources_above_it(star_fits, star_field, capsys):
    """Raising --threshold only removes sources (the kept ones are unchanged), and at 20 the
    table is exactly the six S/N 30 stars."""
    from scipy.spatial import cKDTree

    tables = {}
    for threshold in (5, 12, 20):
        out = star_fits.parent / f"t{threshold}.fits"
        code, _, err = astrodl(capsys, "sources", star_fits, "-o", out, "--threshold", threshold, "--quiet")
        assert code == 0, err
        tables[threshold] = table = _sources(out)
        assert (table["snr"] >= threshold).all() and table.meta["THRESHOL"] == threshold
    assert [len(tables[t]) for t in (5, 12, 20)] == [18, 12, 6]
    for low, high in ((5, 12), (12, 20)):
        d, i = cKDTree(np.c_[tables[low]["x"], tables[low]["y"]]).query(np.c_[tables[high]["x"], tables[high]["y"]])
        assert d.max() < 1e-9 and np.allclose(tables[low]["snr"][i], tables[high]["snr"])
    bright = star_field.truth[star_field.truth["snr"] > 20]
    assert len(bright) == 6
    d, _ = cKDTree(np.c_[tables[20]["x"], tables[20]["y"]]).query(np.c_[bright["x"], bright["y"]])
    assert d.max() < 1
    code, _, err = astrodl(capsys, "sources", star_fits, "--threshold", "-1")
    assert code == 2 and err.strip() == "astrodl: error: threshold: must be positive, got -1.0"


def test_prior_raises_the_source_probability_and_nothing_else(star_fits, capsys):
    """--prior is the fraction of pixels holding sources: a larger one gives every pixel a
    larger P(source) (two-group model), recorded in the header; the significance map and the
    source list do not depend on it."""
    runs = {}
    for prior in ("1e-4", "0.05"):
        out = star_fits.parent / f"p{prior}.fits"
        code, _, err = astrodl(capsys, "sources", star_fits, "-o", out, "--prior", prior, "--quiet")
        assert code == 0, err
        with fits.open(out) as hdul:
            runs[prior] = (hdul[0].data[0].copy(), hdul["SIGNIFICANCE"].data.copy(), hdul[0].header["PRIOR1"])
        runs[prior] += (_sources(out),)
    (p_lo, sig_lo, h_lo, t_lo), (p_hi, sig_hi, h_hi, t_hi) = runs["1e-4"], runs["0.05"]
    assert (h_lo, h_hi) == (1e-4, 0.05)
    np.testing.assert_array_equal(sig_lo, sig_hi)
    uncertain = (p_lo > 1e-6) & (p_lo < 0.99)  # P is 0 far from any source, 1 on bright ones
    assert (p_hi >= p_lo).all() and uncertain.sum() > 500 and (p_hi[uncertain] > p_lo[uncertain]).all()
    assert (t_hi["prob"] >= t_lo["prob"]).all() and list(t_hi["x"]) == list(t_lo["x"])
    code, _, err = astrodl(capsys, "sources", star_fits, "--prior", "2")
    assert code == 2 and err.strip() == "astrodl: error: prior: must be in (0, 1), got 2.0"


def test_profile_moffat_measures_moffat_stars(tmp_path, capsys):
    """--profile picks the matched filter's kernel: with the profile the stars have, the PSF
    fluxes are right; with the other one they are off by a quarter or more."""
    from scipy.spatial import cKDTree

    from glue_astrodl.sim import simulate_point_sources

    for stars in ("gaussian", "moffat"):
        frame = simulate_point_sources((256, 256), snr=(15, 30), n_per_snr=6, fwhm=3.0, psf_profile=stars, beta=2.5,
                                       seed=4)
        path = frame.write(tmp_path / f"{stars}.fits")
        ratio = {}
        for kernel in ("gaussian", "moffat"):
            out = tmp_path / f"{stars}_{kernel}.fits"
            code, _, err = astrodl(capsys, "sources", path, "--profile", kernel, "--fwhm", "3", "-o", out, "--quiet")
            assert code == 0, err
            table = _sources(out)
            _, i = cKDTree(np.c_[table["x"], table["y"]]).query(np.c_[frame.truth["x"], frame.truth["y"]])
            ratio[kernel] = np.median(np.asarray(table["flux"])[i] / frame.truth["flux"])
        other = "moffat" if stars == "gaussian" else "gaussian"
        assert abs(ratio[stars] - 1) < 0.03 and abs(ratio[other] - 1) > 0.2, ratio
    code, _, err = astrodl(capsys, "sources", path, "--profile", "airy")
    assert code == 2 and err.splitlines() == ["astrodl: error: profile: must be one of gaussian, moffat, got 'airy'"]


def test_device_cpu_runs_and_an_unavailable_device_is_one_line_exit_2(star_fits, tmp_path, capsys):
    import torch

    code, _, err = astrodl(capsys, "sources", star_fits, "--device", "cpu", "-o", tmp_path / "cpu.fits", "--quiet")
    assert code == 0 and len(_sources(tmp_path / "cpu.fits")) == 18, err
    second = write_fits(tmp_path / "second.fits", noise_image((64, 64)))
    bad = [("warp-drive", "unknown device 'warp-drive'"), ("xla", "device 'xla': glue-astrodl runs on cpu, cuda or mps"),
           (f"cuda:{torch.cuda.device_count()}", "requested but"), ("mps", "requested but")]
    if not torch.cuda.is_available():
        bad.append(("cuda", "device 'cuda' requested but CUDA is not available on this machine"))
    if torch.backends.mps.is_available():
        bad.pop(3)
    for device, reason in bad:  # refused once for the whole run, before any file or cluster
        code, out, err = astrodl(capsys, "sources", star_fits, second, "--device", device, "-o", tmp_path / "d")
        assert code == 2 and len(err.strip().splitlines()) == 1 and reason in err and not out, err
        assert not (tmp_path / "d").exists()


def test_debug_prints_the_traceback_above_the_same_line_and_exit_code(tmp_path, capsys):
    """Without --debug an error is one line; with it the traceback comes first, and the exit
    code is the same (2 for bad input, found before or inside the file's job)."""
    flat = write_fits(tmp_path / "flat.fits", np.zeros((64, 64), np.float32))
    for args, line in [(("missing.fits",), "astrodl: error: missing.fits: no such file"),
                       ((flat, "--fwhm", "2"), f"astrodl: error: {flat}: constant image")]:
        code, _, plain = astrodl(capsys, "sources", *args)
        assert code == 2 and len(plain.strip().splitlines()) == 1 and plain.startswith(line)
        code, _, debug = astrodl(capsys, "sources", *args, "--debug")
        lines = debug.strip().splitlines()
        assert code == 2 and lines[0] == "Traceback (most recent call last):" and "BadInputError" in lines[-2], debug
        assert lines[-1] == plain.strip()
    res = run_cli("sources", "missing.fits", "--debug")  # and so does the installed command
    assert res.returncode == 2 and res.stderr.startswith("Traceback") and res.stderr.strip().endswith(
        "astrodl: error: missing.fits: no such file")


def _boom(*args, **kwargs):
    raise RuntimeError("boom\nsecond line")


def test_an_internal_failure_is_one_line_exit_1_and_debug_shows_where(star_fits, tmp_path, capsys, monkeypatch):
    """A bug (any exception that is not bad input) inside a file's job: one line naming the
    file, exit 1, no output; --debug adds the traceback down to the failing function."""
    import dataclasses

    from glue_astrodl.tasks import registry

    monkeypatch.setitem(registry._TASKS, "sources", dataclasses.replace(registry.get_task("sources"), run=_boom))
    out = tmp_path / "out.fits"
    code, stdout, err = astrodl(capsys, "sources", star_fits, "-o", out, "--quiet")
    assert code == 1 and not stdout and not out.exists()
    assert err.splitlines() == [f"astrodl: error: {star_fits}: RuntimeError: boom"]
    code, _, err = astrodl(capsys, "sources", star_fits, "-o", out, "--quiet", "--debug")
    lines = err.strip().splitlines()
    assert code == 1 and lines[0] == "Traceback (most recent call last):" and lines[-1] == (
        f"astrodl: error: {star_fits}: RuntimeError: boom")
    assert any("in _boom" in line for line in lines) and any("in task_job" in line for line in lines)


def test_a_failure_outside_the_jobs_is_one_line_exit_1(star_fits, capsys, monkeypatch):
    import glue_astrodl.core.batch

    monkeypatch.setattr(glue_astrodl.core.batch, "run_batch", _boom)
    code, _, err = astrodl(capsys, "sources", star_fits, "--quiet")
    assert code == 1 and err.splitlines() == [
        "astrodl: failed: RuntimeError: boom (rerun with --debug for details)"]
    code, _, err = astrodl(capsys, "sources", star_fits, "--quiet", "--debug")
    lines = err.strip().splitlines()
    assert code == 1 and lines[0].startswith("Traceback") and lines[-1] == "astrodl: failed: RuntimeError: boom"


def test_one_regions_file_for_several_inputs_is_bad_input(tmp_path, star_fits, capsys):
    """(--regions .reg with several inputs, one file per output, is tested on a real cluster in
    test_jobs.py.)"""
    other = write_fits(tmp_path / "other.fits", noise_image((64, 64)))
    code, _, err = astrodl(capsys, "sources", star_fits, other, "-o", tmp_path / "out", "--regions", tmp_path / "all.reg")
    assert code == 2 and err.splitlines() == [(f"astrodl: error: --regions {tmp_path / 'all.reg'}: with several "
                                               "inputs give an extension (.reg, .crtf, .fits)")]
    assert not (tmp_path / "out").exists()


def test_region_min_area_drops_slivers_from_the_region_file(tmp_path, capsys):
    from glue_astrodl.sim import simulate_contaminant_frame
    from glue_astrodl.tasks.contaminants import detect_contaminants

    frame = simulate_contaminant_frame((128, 128), seed=2)
    raw = tmp_path / "raw.fits"
    fits.PrimaryHDU(frame.image, frame.header).writeto(raw)
    expected = detect_contaminants(frame.image, frame.header)
    counts = {}
    for area in ("0.1", "0", "2"):
        args = ("--region-min-area", area) if area != "0.1" else ()  # 0.1 px² is the default
        reg = tmp_path / f"r{area}.reg"
        code, _, err = astrodl(capsys, "contaminants", raw, "-o", tmp_path / f"p{area}.fits", "--regions", reg, *args)
        assert code == 0, err
        counts[area] = len(Regions.read(reg))
        assert counts[area] == len(expected.to_regions(min_area=float(area))), area
    assert counts["0"] > counts["0.1"] > counts["2"] > 0  # slivers, then small regions, are dropped
    code, _, err = astrodl(capsys, "contaminants", raw, "-o", tmp_path / "bad.fits", "--regions", tmp_path / "b.reg",
                           "--region-min-area", "-1")
    assert code == 2 and err.splitlines() == ["astrodl: error: --region-min-area must be >= 0 pixels², got -1.0"]
    assert not (tmp_path / "bad.fits").exists()


def test_a_warning_is_one_line_unless_debug(star_fits, tmp_path, capsys, monkeypatch):
    import warnings

    import glue_astrodl.jobs as jobs

    task_job = jobs.task_job

    def warns(*args, **kwargs):  # a task that warns while it runs
        warnings.warn("the PSF looks odd\nsecond line", UserWarning, stacklevel=1)
        return task_job(*args, **kwargs)

    monkeypatch.setattr(jobs, "task_job", warns)
    code, _, err = astrodl(capsys, "sources", star_fits, "-o", tmp_path / "a.fits", "--quiet")
    assert code == 0 and err.splitlines() == ["astrodl: warning: the PSF looks odd second line"], err
    with pytest.warns(UserWarning, match="the PSF looks odd"):  # --debug: Python's own warning, with its source
        code, _, err = astrodl(capsys, "sources", star_fits, "-o", tmp_path / "b.fits", "--quiet", "--debug")
    assert code == 0 and "astrodl: warning" not in err
