"""HyperSpy / RosettaSciIO front end: ``file_reader`` with RosettaSciIO's signature.

``hs.load(path, file_format=intake_mrc.rsciio)`` (or ``reader=`` before HyperSpy 2.4) reads
through intake_mrc; ``load(url_or_path, lazy=True, storage_options=...)`` and
``MRCFile.to_hyperspy()`` give a HyperSpy signal for remote files too (``hs.load`` itself
only takes local paths). The module only wires :func:`intake_mrc.open_mrc` to RosettaSciIO's
signal dictionaries: every value comes from ``MRCFile`` (axes, header, DE metadata, virtual
and external images); this module decides only how HyperSpy sees them:

* the last two axes are the signal (a Signal2D), every other axis navigates: image stacks,
  volumes and 4D-STEM alike, as RosettaSciIO does;
* a single section (NZ=1, whatever ISPG says) is a 2-D image. ``MRCFile`` keeps mrcfile's
  shape (``(1, ny, nx)`` when ISPG is not 0), so only this front end drops the axis;
* DE virtual and external images go to ``metadata._HyperSpy.navigators`` under their names,
  and the virtual bright field (else the first virtual image) of the scan's shape becomes the
  navigator (``metadata._HyperSpy.navigator``).

HyperSpy is optional: only :func:`load` and ``MRCFile.to_hyperspy`` import it.
"""

from __future__ import annotations

import copy
import datetime
import math
import re
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .api import open_mrc
from .format.rsciio_header import rsciio_std_header

if TYPE_CHECKING:
    from .mrc import MRCFile

__all__ = ["VisibleDeprecationWarning", "file_reader", "load", "signal_dict", "to_hyperspy"]

try:  # RosettaSciIO's class, so that callers' filters and pytest.warns see the same warning
    from rsciio.exceptions import VisibleDeprecationWarning
except ImportError:  # pragma: no cover - RosettaSciIO not installed

    class VisibleDeprecationWarning(UserWarning):  # type: ignore[no-redef]
        """A deprecation users should see (RosettaSciIO's class when it is installed)."""


# Default of RosettaSciIO's deprecated keywords: passing any value (None too) warns, as there.
_NOT_GIVEN: Any = object()


def _warn_deprecated(name: str, alternative: str | None = None, additional: str = "") -> None:
    """RosettaSciIO's message for a deprecated ``file_reader`` argument (its
    ``deprecated_argument`` decorator, removal version None), word for word."""
    message = (
        f"Argument `{name}` is deprecated and has been removed.  To avoid this warning, "
        f"please do not use `{name}`. "
    )
    if alternative is not None:
        message += f"Use `{alternative}` instead. "
    message += "See the documentation of `file_reader()` for more details."
    if additional:
        message += f" {additional}"
    warnings.warn(message, VisibleDeprecationWarning, stacklevel=3)


# A virtual image named so is the bright field, the image users navigate a 4D-STEM scan by.
_BRIGHT_FIELD = re.compile(r"(?:^|[^a-z])(bf|bright[ _-]?field)(?:$|[^a-z])", re.IGNORECASE)


def file_reader(
    filename: Any,
    lazy: bool = False,
    endianness: str | None = None,
    navigation_shape: tuple[int, ...] | None = None,
    chunks: Any = "auto",
    metadata_file: Any = "auto",
    virtual_images: Any = None,
    external_images: Any = None,
    scan_file: Any = "auto",
    *,
    storage_options: dict[str, Any] | None = None,
    mmap_mode: Any = _NOT_GIVEN,
    distributed: Any = _NOT_GIVEN,
    endianess: Any = _NOT_GIVEN,
) -> list[dict[str, Any]]:
    """Read an MRC file (path, URL or open binary file) as RosettaSciIO's list of signal
    dictionaries (``data``, ``axes``, ``metadata``, ``original_metadata``, ``mapping``).

    Arguments as RosettaSciIO's ``rsciio.mrc.file_reader`` (the same positional order):
    ``navigation_shape`` is in HyperSpy's (x, y) order; ``chunks`` as dask takes them
    (frames are never split); ``metadata_file``, ``virtual_images``, ``external_images``,
    ``scan_file`` as :func:`intake_mrc.open_mrc` (``scan_file="auto"`` finds
    ``{stem}_scan_coordinates.csv`` beside the movie). The byte order is the file's own:
    ``endianness`` is accepted and ignored with a warning when it contradicts the file.
    ``storage_options`` go to fsspec for URLs.

    RosettaSciIO's deprecated keywords are accepted as it accepts them (keyword only) and
    warn as it warns, with its ``VisibleDeprecationWarning`` and message: ``distributed``
    and ``mmap_mode`` are ignored (every chunk reads its own byte ranges, local or remote,
    so the graph already runs on a ``dask.distributed`` cluster; local reads use
    :func:`intake_mrc.open_mrc`'s default); ``endianess`` stands for ``endianness``
    (RosettaSciIO 0.15 means to do this but raises ``KeyError``: its decorator drops the
    argument before renaming it).
    """
    if distributed is not _NOT_GIVEN:
        _warn_deprecated(
            "distributed",
            additional=" Distributed memory mapping is now supported in the default "
            "implementation.",
        )
    if mmap_mode is not _NOT_GIVEN:
        _warn_deprecated(
            "mmap_mode", additional=" `mmap_mode` is deprecated because it is not used anymore."
        )
    if endianess is not _NOT_GIVEN:
        _warn_deprecated("endianess", alternative="endianness")
        endianness = endianess
    f = open_mrc(
        filename,
        storage_options=storage_options,
        navigation_shape=navigation_shape,
        chunks=chunks,
        metadata_file=metadata_file,
        virtual_images=virtual_images,
        external_images=external_images,
        scan_file=scan_file,
    )
    claimed = endianness
    if claimed is not None and claimed in "<>" and claimed != f.main_header.byte_order:
        warnings.warn(
            f"{f.name}: endianness={claimed!r} ignored, the header says "
            f"{f.main_header.byte_order!r} ({f.main_header.byte_order_rule})",
            UserWarning,
            stacklevel=2,
        )
    return [signal_dict(f, lazy=lazy)]


def load(
    filename: Any, lazy: bool = True, storage_options: dict[str, Any] | None = None, **kwargs: Any
) -> Any:
    """A HyperSpy signal from a path, URL or file object (``hs.load`` takes local paths
    only). Keywords as :func:`file_reader`."""
    return _dict2signal(
        file_reader(filename, lazy=lazy, storage_options=storage_options, **kwargs)[0], lazy
    )


def to_hyperspy(f: MRCFile, lazy: bool = True) -> Any:
    """The HyperSpy signal of an opened file (``MRCFile.to_hyperspy``)."""
    return _dict2signal(signal_dict(f, lazy=lazy), lazy)


def _dict2signal(dictionary: dict[str, Any], lazy: bool) -> Any:
    try:
        from hyperspy.io import dict2signal
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "HyperSpy is needed for this: pip install 'intake-mrc[hyperspy]'"
        ) from error
    return dict2signal(dictionary, lazy=lazy)


# -- the signal dictionary ----------------------------------------------------------------


def signal_dict(f: MRCFile, lazy: bool = True) -> dict[str, Any]:
    """RosettaSciIO's signal dictionary for an opened file (DE images included)."""
    data, axes = _data_and_axes(f, lazy)
    metadata: dict[str, Any] = {
        "General": {"title": _title(f), "original_filename": f.store.basename},
        "Signal": {"signal_type": "", "quantity": "Intensity"},
        "_HyperSpy": {},
    }
    original: dict[str, Any] = {
        "std_header": rsciio_std_header(f.main_header.raw, f.main_header.byte_order),
        "header": _plain(f.header),
        "mrc": _plain(f.metadata.get("mrc", {})),
    }
    if f.extended_header is not None:
        # FEI records as field -> list (one value per section); other headers as hex.
        original["fei_header" if f.extended_header_type == "old FEI" else "extended_header"] = (
            _plain(f.extended_header)
        )
    if f.extended_header_type in ("FEI1", "FEI2"):
        _fei_metadata(metadata, f.extended_header, f.extended_header_type)
    de = f.metadata.get("direct_electron")
    if de is not None:
        original["de_metadata"] = dict(de["raw"])  # RosettaSciIO's key: the info file's text
        original["direct_electron"] = _plain(
            {k: de[k] for k in ("summary", "info_file", "notes") if k in de}
        )
        _de_metadata(metadata, de)
    if "scan" in f.metadata:
        original["scan"] = _plain(f.metadata["scan"])
    navigators = _images(f, lazy, axes)
    if navigators:
        metadata["_HyperSpy"]["navigators"] = navigators
        navigator = _navigator(f, navigators, data.shape)
        if navigator is not None:
            metadata["_HyperSpy"]["_sig_navigator"] = navigator
    return {
        "data": data,
        "axes": axes,
        "metadata": metadata,
        "original_metadata": original,
        "mapping": dict(OLD_FEI_MAPPING) if "fei_header" in original else {},
    }


def _title(f: MRCFile) -> str:
    name = f.store.basename
    return name[: -len(".mrc")] if name.lower().endswith(".mrc") else name


def _data_and_axes(f: MRCFile, lazy: bool) -> tuple[Any, list[dict[str, Any]]]:
    data = f.to_dask() if lazy else f.read()
    axes = [dict(axis) for axis in f.axes]
    if len(axes) == 3 and f.shape[0] == 1 and f.header.get("nz") == 1:
        # One section (NZ=1, ISPG not 0): a 2-D image, a Signal2D in HyperSpy.
        data, axes = data[0], axes[1:]
    for index, axis in enumerate(axes):
        axis["index_in_array"] = index
        axis["navigate"] = index < len(axes) - 2
    return data, axes


def _images(f: MRCFile, lazy: bool, movie_axes: list[dict[str, Any]]) -> dict[str, Any]:
    """``_sig_<name>`` -> signal dict for every virtual and external image."""
    scan_axes = [a for a in movie_axes if a["navigate"]]
    # An image of the scan has one value per frame (the whole navigation: a line, a raster
    # with its repeats) or per scan point (the y, x grid alone).
    grid_axes = [a for a in scan_axes if a["name"] in ("y", "x")]
    candidates = [scan_axes] + ([grid_axes] if grid_axes and grid_axes != scan_axes else [])
    out: dict[str, Any] = {}
    for images in (f.virtual_images, f.external_images):
        for name in images:
            image = images[name]
            data, axes = _data_and_axes(image, lazy)
            matched = _scan_match(tuple(data.shape), candidates)
            if matched is not None:
                # Its pixels are the scan positions, with their scales, in the movie's shape
                # (a line scan's one-row image becomes the movie's 1-D navigation).
                data = data.reshape(tuple(a["size"] for a in matched))
                axes = [dict(a, navigate=False, index_in_array=i) for i, a in enumerate(matched)]
            out[f"_sig_{name}"] = {
                "data": data,
                "axes": axes,
                "metadata": {
                    "General": {"title": name, "original_filename": image.store.basename},
                    "Signal": {"signal_type": "", "quantity": "Intensity"},
                },
                "original_metadata": {
                    "std_header": rsciio_std_header(
                        image.main_header.raw, image.main_header.byte_order
                    ),
                    "header": _plain(image.header),
                },
            }
    return out


def _scan_match(
    shape: tuple[int, ...], candidates: list[list[dict[str, Any]]]
) -> list[dict[str, Any]] | None:
    """The first candidate axes an image of ``shape`` lays out, axes of size 1 aside."""
    for axes in candidates:
        sizes = [a["size"] for a in axes]
        if axes and [n for n in shape if n != 1] == [n for n in sizes if n != 1]:
            return axes
    return None


def _navigator(f: MRCFile, navigators: dict[str, Any], shape: tuple[int, ...]) -> Any | None:
    """The virtual bright field, else the first virtual image, when it has the scan's shape."""
    virtual = list(f.virtual_images)
    nav_shape = tuple(shape[:-2])
    candidates = [n for n in virtual if _BRIGHT_FIELD.search(n)] + virtual
    for name in candidates:
        image = navigators[f"_sig_{name}"]
        if tuple(image["data"].shape) == nav_shape:
            return copy.copy(image)
    return None


def _de_metadata(metadata: dict[str, Any], de: Mapping[str, Any]) -> None:
    """HyperSpy metadata from a DE info file: RosettaSciIO's keys (values as the info file's
    text, as RosettaSciIO gives them) plus HyperSpy's own conventions where the info says."""
    raw: Mapping[str, str] = de["raw"]
    summary: Mapping[str, Any] = de.get("summary", {})
    tem: dict[str, Any] = {
        "magnification": raw.get("Instrument Project Magnification"),
        "detector": raw.get("Camera Model"),
        "frames_per_second": raw.get("Frames Per Second"),
    }
    voltage = _number(raw.get("Instrument Accelerating Voltage (V)"))
    if voltage is not None and voltage > 0:
        tem["beam_energy"] = voltage / 1000  # keV
    camera_length = _number(raw.get("Instrument Project Camera Length (centimeters)"))
    if camera_length is not None and camera_length > 0:
        tem["camera_length"] = camera_length * 10  # mm, HyperSpy's unit
    metadata["Acquisition_instrument"] = {"TEM": tem}
    timestamp = _number(raw.get("Timestamp (seconds since Epoch)"))
    if timestamp is not None and math.isfinite(timestamp) and timestamp > 0:
        when = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
        metadata["General"].update(
            timestamp=raw["Timestamp (seconds since Epoch)"],
            date=when.date().isoformat(),
            time=when.time().isoformat(),
            time_zone="UTC",
        )
    # Integrating cameras store ADUs (variance = ADUs per electron x signal); counting
    # modes store electrons. HyperSpy's variance model takes that factor as gain_factor.
    counting = "count" in str(raw.get("Image Processing - Mode", "")).lower()
    adus = _number(summary.get("ADUs Per Electron"))
    signal = metadata["Signal"]
    if counting:
        signal["quantity"] = "Electrons (counts)"
        gain = 1.0
    else:
        signal["quantity"] = "Intensity (ADU)"
        gain = adus if adus is not None and adus > 0 else None
    if gain is not None:
        signal["Noise_properties"] = {
            "Variance_linear_model": {"gain_factor": float(gain), "gain_offset": 0.0}
        }
    if adus is not None and adus > 0:
        signal["ADUs_per_electron"] = float(adus)


# FEI1/FEI2 field -> (HyperSpy's place under Acquisition_instrument.TEM, factor from the
# record's SI unit to HyperSpy's). Units as HyperSpy's metadata structure gives them: keV,
# mm, mrad, degrees, seconds. Stage tilts are stored in degrees (Thermo Fisher's
# specification); positions in metres (HyperSpy: mm; RosettaSciIO's Velox EMD reader keeps
# metres there); the convergence angle in radians.
FEI_TO_TEM: dict[str, tuple[str, float]] = {
    "HT": ("beam_energy", 1e-3),
    "Magnification": ("magnification", 1.0),
    "Camera length": ("camera_length", 1e3),
    "Convergence angle": ("convergence_angle", 1e3),
    "Dwell time": ("dwell_time", 1.0),  # s; RosettaSciIO's DigitalMicrograph reader's key
    "Alpha tilt": ("Stage.tilt_alpha", 1.0),
    "Beta tilt": ("Stage.tilt_beta", 1.0),
    "X-Stage": ("Stage.x", 1e3),
    "Y-Stage": ("Stage.y", 1e3),
    "Z-Stage": ("Stage.z", 1e3),
    "Integration time": ("Detector.Camera.exposure", 1.0),  # RosettaSciIO's old-FEI key
}
# Quantities that are never zero when measured: a 0 there means "not recorded".
_FEI_POSITIVE = {
    "HT",
    "Magnification",
    "Camera length",
    "Convergence angle",
    "Dwell time",
    "Integration time",
}
_FEI_MODES = {1: "TEM", 2: "STEM"}  # "Instrument mode"


def _fei_metadata(metadata: dict[str, Any], records: Any, kind: str) -> None:
    """``Acquisition_instrument.TEM`` from FEI1/FEI2 records (EPU, Velox), as HyperSpy's
    metadata structure names and scales things. A field counts only where its Bitmask says
    it is valid; a value the same in every section is a number, one that changes (a tilt
    series' tilts) is the list of per-section values. RosettaSciIO decodes none of this
    (it reads only the old 128-byte FEI layout)."""
    from .format.extended import fei_valid

    if not isinstance(records, np.ndarray) or records.dtype.names is None or not len(records):
        return
    tem: dict[str, Any] = {}

    def put(path: str, value: Any) -> None:
        node = tem
        *parents, leaf = path.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value

    def values(name: str) -> list[Any] | None:
        valid = fei_valid(records, kind, name)
        if not valid.all():  # invalid in a section: the field says nothing reliable
            return None
        column = records[name]
        if column.dtype.kind == "S":
            return [bytes(v).decode("latin-1").rstrip("\x00 ") for v in column]
        return column.tolist()

    for name, (path, factor) in FEI_TO_TEM.items():
        found = values(name)
        if found is None or not all(_number(v) is not None for v in found):
            continue
        if name in _FEI_POSITIVE and not all(v > 0 for v in found):
            continue
        scaled = [float(v) * factor for v in found]
        if not all(math.isfinite(v) for v in scaled):  # 1e308 m is inf mm: not a position
            continue
        put(path, scaled[0] if len(set(scaled)) == 1 else scaled)
    microscope = values("Microscope type")
    if microscope and microscope[0]:
        tem["microscope"] = microscope[0]
    mode = values("Instrument mode")
    if mode and mode[0] in _FEI_MODES:
        tem["acquisition_mode"] = _FEI_MODES[mode[0]]
    # The detector's name, under RosettaSciIO's DE key: the STEM detector in STEM, else the
    # camera.
    stem = values("STEM Detector name")
    camera = values("Camera name")
    detector = stem if tem.get("acquisition_mode") == "STEM" and stem and stem[0] else camera
    if detector and detector[0]:
        tem["detector"] = detector[0]
    if camera and camera[0]:
        put("Detector.Camera.name", camera[0])
    if tem:
        metadata.setdefault("Acquisition_instrument", {})["TEM"] = tem
    stamp = values("Timestamp")
    if stamp and _number(stamp[0]) is not None and 0 < stamp[0] < 2_958_466:
        # Days since 1899-12-30 (an OLE automation date), local time of the instrument:
        # no time zone is claimed.
        when = datetime.datetime(1899, 12, 30) + datetime.timedelta(days=float(stamp[0]))
        metadata["General"].update(
            date=when.date().isoformat(), time=when.time().isoformat(timespec="seconds")
        )


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _plain(value: Any) -> Any:
    """JSON-safe: numpy values to Python, structured arrays to field -> list, bytes to hex,
    NaN/inf to None (HyperSpy saves original_metadata as JSON-like trees)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.dtype.names:
        return {name: _plain(value[name]) for name in value.dtype.names}
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()] if value.ndim else _plain(value.item())
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes | bytearray | np.bytes_ | np.void):
        return bytes(value).hex()
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# RosettaSciIO's mapping of the old 128-byte FEI records (the same field names here).
OLD_FEI_MAPPING: dict[str, tuple[str, Any]] = {
    "fei_header.a_tilt": ("Acquisition_instrument.TEM.Stage.tilt_alpha", None),
    "fei_header.b_tilt": ("Acquisition_instrument.TEM.Stage.tilt_beta", None),
    "fei_header.x_stage": ("Acquisition_instrument.TEM.Stage.x", None),
    "fei_header.y_stage": ("Acquisition_instrument.TEM.Stage.y", None),
    "fei_header.z_stage": ("Acquisition_instrument.TEM.Stage.z", None),
    "fei_header.exp_time": ("Acquisition_instrument.TEM.Detector.Camera.exposure", None),
    "fei_header.magnification": ("Acquisition_instrument.TEM.magnification", None),
}
