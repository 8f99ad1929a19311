"""napari reader (npe2): ``napari file.mrc`` or ``napari s3://bucket/movie.mrc`` opens the
data lazily (a dask array: napari reads the frames it shows) with physical scale, axis
labels, units and the origin as translate.

The manifest is ``intake_mrc/napari.yaml`` (entry point ``napari.manifest``). Remote URLs
get no storage options from napari: credentials come from the environment or fsspec's
configuration. In code, ``viewer.open(url, plugin="intake-mrc")`` (napari's default plugin
does not read MRC).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

# What get_reader accepts (checked on the name without a query string, case-insensitive).
EXTENSIONS = (".mrc", ".mrcs", ".map", ".ccp4", ".rec", ".st", ".ali", ".preali")
COMPRESSED = ("", ".gz", ".bz2")

LayerData = tuple[Any, dict[str, Any], str]


def _name(path: str) -> str:
    """The file's name: the URL path's last part (no query string, no fragment)."""
    if "://" in path:
        path = urlsplit(path.split("::")[-1]).path
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def is_mrc_name(path: str) -> bool:
    if path.endswith(("/", "\\")):  # a folder
        return False
    name = _name(path).lower()
    return any(name.endswith(ext + comp) for ext in EXTENSIONS for comp in COMPRESSED)


def get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """The reader for one MRC path or URL; None (fast, nothing read) for anything else."""
    if isinstance(path, list | tuple):
        if len(path) != 1:
            return None  # stacking several files is napari's, not ours
        path = path[0]
    if not isinstance(path, str) or not is_mrc_name(path):
        return None
    return read_mrc


def _units(axis: dict[str, Any]) -> str:
    return axis["units"] or "pixel"


def layer_data(f: Any) -> list[LayerData]:
    """Layer data tuples for an opened ``MRCFile``: one image layer, or amplitude and phase
    layers for complex data (napari draws no complex images)."""
    import dask.array as da

    data = f.to_dask()
    axes = f.axes
    meta: dict[str, Any] = {
        "name": f.store.basename or "mrc",
        "scale": [float(a["scale"]) for a in axes],
        "translate": [float(a["offset"]) for a in axes],
        "axis_labels": list(f.dimension_names()),
        "units": [_units(a) for a in axes],
        "metadata": {"source": f.name, "mrc_header": dict(f.header), "axes": axes},
    }
    header = f.header
    low, high = header.get("dmin"), header.get("dmax")
    if (
        data.dtype.kind != "c"
        and isinstance(low, float | int)
        and isinstance(high, float | int)
        and math.isfinite(low)
        and math.isfinite(high)
        and high > low
    ):
        # The header's range: napari would otherwise read slices to find one.
        meta["contrast_limits"] = [float(low), float(high)]
    if data.dtype.kind == "c":
        return [
            (da.absolute(data), {**meta, "name": meta["name"] + " amplitude"}, "image"),
            (da.angle(data), {**meta, "name": meta["name"] + " phase"}, "image"),
        ]
    return [(data, meta, "image")]


def read_mrc(path: str | list[str]) -> list[LayerData]:
    """Open ``path`` with :func:`intake_mrc.open_mrc` (header only) and return its layers."""
    from .api import open_mrc

    if isinstance(path, list | tuple):
        path = path[0]
    return layer_data(open_mrc(path))
