"""Contaminant detection: per-pixel probabilities of the 14 MaxiMask classes.

`detect_contaminants` runs the shipped segmentation model (or any model with a card) over
an image of any size in overlapping tiles, converts its outputs to calibrated posteriors
for the user's class priors (the card's Platt scaling makes them calibrated at the priors
of its held-out calibration set, ``training_priors``; Bayes' rule moves them to yours), and
returns a `ContaminantDetection` with probability maps, masks, a MaxiMask-compatible
bit-mask, FITS and regions export.

`write_contaminants` (the task's file job) makes the same products for every image of a FITS
file tile by tile, straight into a memory-mapped output (`glue_astrodl.io.fits.memmap_fits`):
masks and bit-masks are thresholded per tile, so the float cube of a frame larger than
memory never exists. Both paths share the thresholds, the per-tile postprocess, the headers
and the region code below.
"""

import functools
from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits

from ..core.calibration import prior_shift_sigmoid
from ..core.errors import BadInputError
from ..core.weights import load_model
from ..io.regions import MIN_REGION_AREA
from .contaminant_classes import CLASSES, DEFAULT_PRIORS, DEFECTS, MAXIMASK
from .inputs import as_image
from .registry import IMAGE, Param, Task, register_task
from .results import BITMASK, PROBABILITY, Layer, Result, SubsetSpec, flagged_summary

__all__ = ["detect_contaminants", "write_contaminants", "ContaminantDetection", "parse_priors", "parse_classes",
           "default_thresholds", "TASK"]

MODEL = "contaminants"
TILE = None  # default tile side: 512 px, or 6.4 x the card's overlap (see detect_contaminants)
PRODUCTS = ("proba", "masks", "bitmask")
PRECISIONS = ("auto", "bf16", "fp32")  # glue_astrodl.core.device.PRECISIONS (torch is not imported here)


@functools.lru_cache(maxsize=4)
def _model(name, device):
    from ..core.fusion import fold_batchnorm
    from ..models.registry import ARCHITECTURES

    net, card = load_model(name, device=device, architectures=ARCHITECTURES)
    return fold_batchnorm(net), card


def parse_priors(text):
    """``"CR=5e-4,TRL=1e-3"`` -> ``{"CR": 5e-4, "TRL": 1e-3}`` (validated).

    Examples
    --------
    >>> parse_priors("cr=1e-3, TRL=2e-4")
    {'CR': 0.001, 'TRL': 0.0002}
    """
    priors = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, _, value = item.partition("=")
        name = name.strip().upper()
        if name not in CLASSES:
            raise BadInputError(f"unknown class {name!r} in priors; classes are {', '.join(CLASSES)}")
        try:
            priors[name] = float(value)
        except ValueError:
            raise BadInputError(f"prior for {name} must be a number, got {value!r}") from None
    return priors


def _check_priors(priors):
    if not isinstance(priors, dict):
        raise BadInputError(f"priors must be {{class: fraction}}, got {priors!r}")
    for name, p in priors.items():
        if not 0.0 < p < 1.0:
            raise BadInputError(f"prior of {name} must be in (0, 1), got {p}")
    return priors


def parse_classes(text):
    """``"cr, TRL"`` -> ``["CR", "TRL"]`` (validated against the taxonomy)."""
    names = [c.strip().upper() for c in (text.split(",") if isinstance(text, str) else text) if str(c).strip()]
    unknown = [c for c in names if c not in CLASSES]
    if unknown:
        raise BadInputError(f"unknown class(es) {', '.join(unknown)}; classes are {', '.join(CLASSES)}")
    return names


@dataclass
class ContaminantDetection(Result):
    """Calibrated per-class probabilities ``(K, H, W)`` for ``classes``, with their priors.

    Examples
    --------
    >>> import numpy as np
    >>> from glue_astrodl import detect_contaminants
    >>> image = np.random.default_rng(1).normal(100.0, 5.0, (128, 128)).astype(np.float32)
    >>> image[60, 40:44] += 400.0  # a cosmic-ray track
    >>> res = detect_contaminants(image, classes=["CR", "HP"])
    >>> res["CR"].shape, bool(res.masks()[0][60, 41])
    ((128, 128), True)
    >>> res.summary()  # doctest: +ELLIPSIS
    'flagged CR 0.0...%...'
    """

    probabilities: np.ndarray
    classes: list
    priors: dict
    thresholds: dict
    header: fits.Header
    wcs: object = None
    card: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    taxonomy: object = MAXIMASK

    def __getitem__(self, name):
        return self.probabilities[self.classes.index(name)]

    def masks(self, thresholds=None):
        """Boolean ``(K, H, W)`` masks; per-class thresholds default to the MCC-optimal ones."""
        return _masks(self.probabilities, self.classes, dict(self.thresholds, **(thresholds or {})))

    def bitmask(self, thresholds=None):
        """int16 MaxiMask-style bit-mask: OR of the bit codes of every flagged class."""
        return _bitmask(self.masks(thresholds), self.classes, self.taxonomy)

    def defect_mask(self, classes=DEFECTS):
        """Pixels flagged as any of ``classes`` (default: the pixel-level defects that other
        tasks should ignore, `glue_astrodl.tasks.contaminant_classes.DEFECTS`)."""
        picked = [i for i, c in enumerate(self.classes) if c in classes]
        return self.masks()[picked].any(axis=0) if picked else np.zeros(self.probabilities.shape[1:], bool)

    def to_hdu(self, product="proba", thresholds=None):
        """``proba`` (float32 cube), ``masks`` (uint8 cube) or ``bitmask`` (int16) as an ImageHDU."""
        thr = dict(self.thresholds, **(thresholds or {}))
        header, dtype = _product_header(product, self.classes, self.priors, thr, self.header, self.wcs, self.card,
                                        self.taxonomy, self.meta.get("tta", 1), self.meta.get("precision"))
        if product == "proba":
            data = self.probabilities
        else:
            data = self.masks(thr) if product == "masks" else self.bitmask(thr)
        return fits.ImageHDU(np.asarray(data, dtype), header)

    def to_hdus(self, product="proba", thresholds=None):
        return [self.to_hdu(product or "proba", thresholds)]

    def to_fits(self, path, product="proba", thresholds=None, overwrite=True):
        """Write `to_hdu` ``product`` to ``path`` atomically."""
        from ..io.fits import write_hdus

        return write_hdus(path, self.to_hdus(product, thresholds), overwrite)

    def to_regions(self, name=None, threshold=None, min_pixels=1, min_area=MIN_REGION_AREA):
        """Contour polygons of class ``name`` above its threshold, or of every flagged
        foreground class when ``name`` is None (sky coordinates when a WCS exists);
        polygons under ``min_area`` pixels² (slivers around pixels barely above the
        threshold) are dropped."""
        names = [name] if name is not None else [c for c in self.classes if c != self.taxonomy.background]
        thresholds = {c: self.thresholds[c] if threshold is None else threshold for c in names}
        return _class_regions(((c, self[c]) for c in names), thresholds, self.wcs, self.taxonomy, min_pixels,
                              min_area)

    def flagged_fractions(self, thresholds=None):
        """Fraction of pixels flagged per class."""
        return {c: float(m.mean()) for c, m in zip(self.classes, self.masks(thresholds))}

    def layers(self):
        """One probability layer per foreground class, then the bit-mask; none is shown by
        default, so the image stays in view under the subsets."""
        return [*(Layer(f"P({c})", self[c], PROBABILITY, self.taxonomy.colours.get(c), False,
                        self.taxonomy.label(c)) for c in self.classes if c != self.taxonomy.background),
                Layer("bitmask", self.bitmask(), BITMASK, None, False, "contaminant bit-mask (MaxiMask codes)",
                      self.taxonomy)]

    def subsets(self):
        """The flagged pixels of every foreground class that flags any, named with what the
        class means (``"CR: cosmic rays"``)."""
        return [SubsetSpec(self.taxonomy.label(c), m, self.taxonomy.colours.get(c), self.taxonomy.label(c))
                for c, m in zip(self.classes, self.masks()) if c != self.taxonomy.background and m.any()]

    def summary(self):
        return f"flagged {_flagged_text(self.flagged_fractions(), self.taxonomy)}"

    def truth_report(self, frame):
        """One line: ROC AUC of the cosmic-ray probabilities against ``frame``'s true masks
        (a simulated `ContaminantTile`) and the flagged fraction."""
        from ..core.calibration import roc_auc

        if "CR" not in self.classes:
            return "no CR class computed"
        truth = self.truth_masks(frame)["CR"]
        auc = roc_auc(truth.ravel(), np.nan_to_num(self["CR"]).ravel())
        return f"cosmic rays: ROC AUC {auc:.4f}, CR flagged on {self.flagged_fractions()['CR']:.3%} of pixels"

    def truth_masks(self, frame):
        """``{class: true mask}`` of the computed foreground classes when ``frame`` carries
        per-class truth masks in this taxonomy's order (a simulated `ContaminantTile`), else None."""
        masks = getattr(frame, "masks", None)
        if masks is None or len(masks) != len(self.taxonomy.classes):
            return None
        order = list(self.taxonomy.classes)
        return {c: np.asarray(masks[order.index(c)], bool) for c in self.classes if c != self.taxonomy.background}

    def quicklook(self, path, image, frame=None):
        """PNG: the flagged pixels over the image, beside the truth when ``frame`` (a
        simulated frame) carries it, else beside the plain image."""
        from ..io.quicklook import quicklook_contaminants

        return quicklook_contaminants(path, image, self, truth=self.truth_masks(frame))


def default_thresholds(card, priors):
    """The model card's decision thresholds moved from its default priors to ``priors``
    (``{class: prior}``) by Bayes' rule, as `detect_contaminants` applies them."""
    card_default = card.get("default_priors", DEFAULT_PRIORS)
    return {c: float(prior_shift_sigmoid(np.float64(card["thresholds"].get(c, 0.5)), card_default.get(c, p), p))
            for c, p in priors.items()}


def detect_contaminants(image, header=None, wcs=None, *, priors=None, classes=None, model="contaminants",
                        device=None, hdu=None, plane=None, tile=TILE, batch_size=None, tta=1, progress=False,
                        callback=None, precision=None):
    """Per-pixel contaminant probabilities, calibrated to ``priors``.

    Parameters
    ----------
    image : str, Path, array, HDU or NDData
        One 2-D image (cubes need ``plane``).
    priors : dict, optional
        Fraction of pixels of each class in *your* data (e.g. ``{"CR": 1e-3}``); missing
        classes use `glue_astrodl.tasks.contaminant_classes.DEFAULT_PRIORS`.
    classes : list of str, optional
        Classes to compute (default: all 14).
    model : str
        Name of an installed model, or a path to ``.safetensors`` with its ``.json`` card.
    tile, batch_size : int
        Largest tile side read per forward pass (at least four times the card's overlap),
        and tiles per pass (default: 1 on CPU; on CUDA 8 tiles of 512² or the same pixels).
        The tiles of a frame overlap by twice the card's ``receptive_field_overlap``
        (320 px for the shipped model), so the default tile is 512 px or 6.4 times that
        overlap, whichever is larger (2048 px for the shipped model: one pass on 2048²,
        where tiles of 1280 computed 2.9 times the frame's pixels); the result is the same
        (the overlap covers the receptive field), the memory of one tile larger.
    tta : int
        Test-time augmentation: average the network's logits over this many symmetries
        of the square (1 = off, 2, 4 or 8), at that many times the network's cost. All
        eight raise every class's held-out AUC (e.g. P 0.949 -> 0.954) and, on the benchmark
        frame, the cosmic-ray true-positive rate at a false-positive rate of 1e-4 from 0.667
        to 0.704.
    precision : {"auto", "bf16", "fp32"}, optional
        The network's arithmetic (None: ``$ASTRODL_PRECISION``, else ``auto``): bf16
        autocast on CUDA and on CPUs with native bf16 (AVX512-BF16, AMX), about 1.5x faster
        end to end there at the same accuracy, else float32. The one used is
        ``meta["precision"]`` and the products' ``PRECISN`` header card.
    """
    _check_tta(tta)
    img = as_image(image, header, wcs, hdu=hdu, plane=plane)
    run = _configure(img.name, priors=priors, classes=classes, model=model, device=device, tta=tta,
                     precision=precision)
    probs, stats = run.predictor.predict(img.data, run.classes, run.priors, tile=tile, batch_size=batch_size,
                                         postprocess=_blank_missing(img.data), progress=progress,
                                         callback=callback, desc="contaminants")
    meta = dict(stats, source=img.name, wcs_note=img.wcs_problem or "", model=run.card.name,
                model_version=run.card.version, tta=tta, precision=run.predictor.precision)
    return ContaminantDetection(probs, run.classes, run.priors, run.thresholds, img.header, img.wcs,
                                run.card.data, meta)


def write_contaminants(input, output, *, product="proba", regions=None, progress=False, hdu=None, plane=None,
                       priors=None, classes=None, model=MODEL, device=None, tile=TILE, batch_size=None, tta=1,
                       callback=None, region_min_area=MIN_REGION_AREA, precision=None):
    """Contaminant ``product`` of every image HDU of the FITS file ``input`` (cubes plane by
    plane), computed and written to ``output`` tile by tile; returns the one-line summary.

    ``output`` holds one HDU per image (``EXTNAME`` ``PROBA1``, ``MASKS2``, ...; ``SRCHDU`` and
    ``SRCPLANE`` name its source), after a header-only primary HDU when there are several,
    with the headers of `ContaminantDetection.to_hdu`. Probabilities go straight into the
    memory-mapped float32 cube; ``masks`` (uint8) and ``bitmask`` (int16) are thresholded
    per tile, so the float cube never exists and memory stays at the input's map plus a
    band of tiles, whatever the frame size. ``regions`` writes the contours of every
    flagged foreground class of the first image, read back from the written planes
    (polygons under ``region_min_area`` pixels² dropped). The
    file appears only when complete (a failure, a Ctrl-C or a ``callback`` returning False
    leaves nothing); the other parameters are those of `detect_contaminants`.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from astropy.io import fits
    >>> d = tempfile.mkdtemp()
    >>> image = np.random.default_rng(1).normal(100.0, 5.0, (128, 128)).astype(np.float32)
    >>> image[60, 40:44] += 400.0  # a cosmic-ray track
    >>> fits.writeto(f"{d}/frame.fits", image)
    >>> write_contaminants(f"{d}/frame.fits", f"{d}/frame_bitmask.fits", product="bitmask")  # doctest: +ELLIPSIS
    '1 image(s); flagged: BBG ...%, CR 0.02%'
    >>> int(fits.getdata(f"{d}/frame_bitmask.fits")[60, 41]) & 1  # the CR bit
    1
    """
    from ..io.fits import memmap_fits
    from ..io.regions import write_regions

    if product not in PRODUCTS:
        raise BadInputError(f"product must be one of {', '.join(PRODUCTS)}, got {product!r}")
    _check_tta(tta)
    images = _images(input, hdu, plane)
    run = _configure(images[0][2].name, priors=priors, classes=classes, model=model, device=device, tta=tta,
                     precision=precision)
    layout = [_file_hdu(run, product, n, *image) for n, image in enumerate(images, start=1)]
    if len(layout) > 1:
        layout.insert(0, (layout[0][0], (), np.uint8))  # a header-only primary HDU
    first = len(layout) - len(images)
    with memmap_fits(output, layout) as out:
        flagged = [_stream(run, product, img, out, k, tile=tile, batch_size=batch_size, progress=progress,
                           callback=callback) for k, (_, _, img) in enumerate(images, start=first)]
        if regions:
            wcs = images[0][2].wcs
            write_regions(_written_regions(run, product, out, first, wcs, region_min_area), regions, wcs=wcs)
    fractions = [dict(zip(run.classes, counts / img.data.size)) for counts, (_, _, img) in zip(flagged, images)]
    return f"{len(images)} image(s); flagged: " + "; ".join(_flagged_text(f, MAXIMASK) for f in fractions)


def _check_tta(tta):
    """Refuse a bad ``tta`` before any image is read or model loaded."""
    from ..core.symmetry import check_symmetries

    check_symmetries(tta)


@dataclass
class _Run:
    """A validated run: the predictor, the classes computed, their priors and thresholds."""

    predictor: object
    classes: list
    priors: dict
    thresholds: dict
    tta: int

    @property
    def card(self):
        return self.predictor.card


def _configure(name, *, priors, classes, model, device, tta, precision=None):
    """The `_Run` of ``model`` on the image called ``name`` (a one-line `BadInputError` if invalid)."""
    # torch is imported here, not with the module, so that viewers start without it
    from ..core.device import resolve_device
    from ..core.predictor import Predictor

    device = str(resolve_device(device))
    net, card = _model(str(model), device)
    predictor = Predictor(card, net, device, tta, task=MODEL, precision=precision)
    outputs = list(card.outputs)
    classes = [c.upper() for c in (classes or outputs)]
    unknown = [c for c in classes if c not in outputs]
    if unknown:
        raise BadInputError(f"unknown class(es) {', '.join(unknown)}; the model knows {', '.join(outputs)}")
    if (n_in := card.arch_kwargs.get("in_channels", 1)) != 1:
        raise BadInputError(f"{name}: model {card.name} needs {n_in} bands, got 1 image")
    priors = _check_priors(dict(DEFAULT_PRIORS, **(priors or {})))
    priors = {c: priors[c] for c in classes}
    return _Run(predictor, classes, priors, default_thresholds(card, priors), tta)


def _masks(probabilities, classes, thresholds):
    """Boolean masks: each plane of ``probabilities`` at or above its class's threshold
    (NaN, a missing input pixel, is never flagged)."""
    t = np.array([thresholds[c] for c in classes], dtype=np.float32)[:, None, None]
    return probabilities >= t


def _bits(classes, taxonomy):
    """``{class: bit code}`` of the ``classes`` that have a bit."""
    return {c: taxonomy.bits[c] for c in classes if taxonomy.bits.get(c)}


def _bitmask(masks, classes, taxonomy):
    """int16 OR of the bit codes of the classes flagged in ``masks`` ``(K, H, W)``."""
    out = np.zeros(masks.shape[1:], np.int16)
    for name, code in _bits(classes, taxonomy).items():
        out[masks[classes.index(name)]] |= np.int16(code)
    return out


def _product_header(product, classes, priors, thresholds, header, wcs, card, taxonomy, tta, precision=None):
    """``(header, dtype)`` of a ``product`` HDU (`ContaminantDetection.to_hdu`, the streamed file)."""
    from ..io.fits import bitmask_header, mask_header, probability_header

    common = dict(header=header, wcs=wcs, model=card, taxonomy=taxonomy)
    if product == "proba":
        hdr, dtype = probability_header(classes, priors=priors, thresholds=thresholds, **common), np.float32
    elif product == "masks":
        hdr, dtype = mask_header(classes, thresholds=thresholds, **common), np.uint8
    elif product == "bitmask":
        hdr, dtype = bitmask_header(_bits(classes, taxonomy), **common), np.int16
    else:
        raise BadInputError(f"product must be one of {', '.join(PRODUCTS)}, got {product!r}")
    hdr["TTA"] = (tta, "symmetries averaged (test-time augmentation)")
    if precision:
        hdr["PRECISN"] = (precision, "network arithmetic: bf16 (autocast) or fp32")
    return hdr, dtype


def _class_regions(planes, thresholds, wcs, taxonomy, min_pixels=1, min_area=MIN_REGION_AREA):
    """Contours of each ``(class, 2-D map)`` of ``planes`` at its class's threshold."""
    from regions import Regions

    from ..io.regions import probability_regions

    return Regions([r for c, plane in planes for r in probability_regions(
        plane, thresholds[c], wcs=wcs, label=c, color=taxonomy.colours.get(c), min_pixels=min_pixels,
        min_area=min_area)])


def _flagged_text(fractions, taxonomy):
    """`flagged_summary` of the foreground classes of ``fractions``."""
    return flagged_summary({c: f for c, f in fractions.items() if c != taxonomy.background})


def _blank_missing(data):
    """Tile postprocess: probabilities NaN where the input pixel is NaN/inf (read per tile)."""
    if not np.issubdtype(data.dtype, np.floating):
        return None

    def blank(values, window):
        y0, y1, x0, x1 = window
        bad = ~np.isfinite(np.asarray(data[y0:y1, x0:x1]))
        if bad.any():
            values = values.copy()
            values[:, bad] = np.nan
        return values

    return blank


class _TileProducts:
    """Tile postprocess of the streamed file: blank missing input pixels, count the flagged
    pixels of each class (``flagged``) and return the tile's ``product`` values.

    ``final(y0, y1)`` is told when output rows ``y0:y1`` are complete (tiles come in
    row-major order, see `glue_astrodl.core.tiling.tiled_inference`).
    """

    def __init__(self, product, classes, thresholds, taxonomy, data, final):
        self.product, self.classes, self.thresholds, self.taxonomy = product, classes, thresholds, taxonomy
        self.blank, self.final, self.done = _blank_missing(data), final, 0
        self.flagged = np.zeros(len(classes), np.int64)

    def __call__(self, values, window):
        if window[0] > self.done:
            self.final(self.done, window[0])
            self.done = window[0]
        if self.blank is not None:
            values = self.blank(values, window)
        masks = _masks(values, self.classes, self.thresholds)
        self.flagged += masks.sum(axis=(1, 2))
        if self.product == "proba":
            return values
        if self.product == "masks":
            return masks.view(np.uint8)
        return _bitmask(masks, self.classes, self.taxonomy)[None]


def _images(path, hdu=None, plane=None):
    """``(hdu, plane, ImageData)`` of every 2-D image of ``path`` (only HDU ``hdu`` if given;
    cubes plane by plane unless ``plane`` is given), data memory-mapped."""
    from ..io.fits import image_hdu_indices, read_image

    images = []
    for index in [hdu] if hdu is not None else image_hdu_indices(path):
        img = read_image(path, index)
        planes = [plane] if plane is not None or img.data.ndim == 2 else range(int(np.prod(img.data.shape[:-2])))
        images += [(index, p, as_image(img, plane=p)) for p in planes]
    return images


def _file_hdu(run, product, number, index, plane, img):
    """``(header, shape, dtype)`` of the ``number``-th image's HDU in the streamed file."""
    header, dtype = _product_header(product, run.classes, run.priors, run.thresholds, img.header, img.wcs,
                                    run.card.data, MAXIMASK, run.tta, run.predictor.precision)
    header["SRCHDU"] = (str(index), "input HDU")
    if plane is not None:
        header["SRCPLANE"] = (plane, "input cube plane")
    header["EXTNAME"] = (f"{product.upper()}{number}", "extension name")
    planes = () if product == "bitmask" else (len(run.classes),)
    return header, planes + img.data.shape, dtype


def _stream(run, product, img, out, index, **predict):
    """Compute ``product`` of ``img`` into HDU ``index`` of ``out`` (a `MemmapFits`) tile by
    tile, releasing finished rows; returns the flagged pixel count of each class."""
    data = out.data[index]
    tiles = _TileProducts(product, run.classes, run.thresholds, MAXIMASK, img.data,
                          final=lambda y0, y1: out.release(index, (y0, y1)))
    run.predictor.predict(img.data, run.classes, run.priors, out=data if data.ndim == 3 else data[None],
                          postprocess=tiles, desc="contaminants", **predict)
    out.release(index)
    return tiles.flagged


def _written_regions(run, product, out, index, wcs, min_area):
    """Regions of every flagged foreground class, contoured from the planes written to HDU
    ``index`` of ``out`` one class at a time (each released once contoured)."""
    data = out.data[index]
    if product == "bitmask":
        bits = _bits(run.classes, MAXIMASK)
        names, thresholds = list(bits), dict.fromkeys(bits, 0.5)
    else:
        names = [c for c in run.classes if c != MAXIMASK.background]
        thresholds = run.thresholds if product == "proba" else dict.fromkeys(names, 0.5)

    def planes():
        for c in names:
            yield c, (data & bits[c]) != 0 if product == "bitmask" else data[run.classes.index(c)]
            out.release(index)

    return _class_regions(planes(), thresholds, wcs, MAXIMASK, min_area=min_area)


TASK = register_task(Task(
    name="contaminants",
    label="Detect Contaminants",
    kind=IMAGE,
    run=detect_contaminants,
    write=write_contaminants,
    description="14-class contaminant probabilities (MaxiMask classes): cosmic rays, trails, bad pixels and "
                "other contaminants, per pixel, calibrated to your priors.",
    params=(
        Param("classes", parse_classes, None, "classes to compute, comma-separated (default: all 14), e.g. CR,TRL",
              label="Classes"),
        Param("priors", parse_priors, None, "class priors of your data, e.g. CR=5e-4,TRL=1e-4 (default: model card)",
              validate=_check_priors, label="Priors"),
        Param("tta", int, 1, "average over this many rotations/flips of each tile: more accurate, that many "
              "times slower", choices=(1, 2, 4, 8), label="Test-time augmentation"),
        Param("model", str, MODEL, "installed model name or .safetensors path", label="Model"),
        Param("precision", str.lower, None, "network arithmetic: auto (bf16 where the CPU or GPU has it natively), "
              "bf16 or fp32 (default: $ASTRODL_PRECISION, else auto)", choices=PRECISIONS, label="Precision"),
    ),
    models=(MODEL,),
    products=PRODUCTS,
    demo_input="raw",
))
