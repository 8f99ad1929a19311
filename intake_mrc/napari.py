"""napari reader (npe2): ``napari file.mrc`` or ``napari s3://bucket/movie.mrc`` opens the
data lazily (a dask array: napari reads the frames it shows) with physical scale, axis
labels, units and the origin as translate.

napari turns dask's task fusion off while it slices (``napari.utils._dask_utils``), so each
frame it shows reads the whole dask chunk around it: the layer's chunks are small (whole
frames, about ``CHUNK_BYTES``), not the multi-frame chunks of ``to_dask()``. Contrast limits
come from the header's DMIN/DMAX, or, when the header has no range, from three frames
(first, middle, last, as napari samples large data); napari would otherwise compute them
from the whole array when it holds under 10 million values (every byte, remote or not).

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

# What one frame shown in napari may cost: chunks of whole frames up to this size (one frame
# when a frame is larger). Small enough that a frame over HTTP/S3 is quick, large enough
# that a million-frame movie stays a graph napari slices quickly (1,048,576 one-frame chunks
# took 4.8 s per slice here; chunks of 1 MiB of 32 KiB frames make 32,768, 0.2 s).
CHUNK_BYTES = 2**20


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


def _header_range(header: dict[str, Any]) -> list[float] | None:
    low, high = header.get("dmin"), header.get("dmax")
    if (
        isinstance(low, float | int)
        and isinstance(high, float | int)
        and math.isfinite(low)
        and math.isfinite(high)
        and high > low
    ):
        return [float(low), float(high)]
    return None  # MRC2014: DMAX < DMIN (DE-Server writes 2 and 1) means "not computed"


def sampled_range(data: Any) -> list[float] | None:
    """Min and max of the first, middle and last frame, widened like napari's own when they
    are equal; None when all NaN. One compute per frame: dask then fuses the slice into the
    read (only the frame's bytes), which it does not for several slices of one chunk."""
    import numpy as np

    nav = data.shape[:-2]
    picks = {tuple(0 for _ in nav), tuple(n // 2 for n in nav), tuple(n - 1 for n in nav)}
    values = np.concatenate([np.ravel(data[index].compute()) for index in sorted(picks)])
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if finite.size == 0:
        return None
    low, high = float(finite.min()), float(finite.max())
    if low == high:
        low, high = min(low, 0.0), max(high, 1.0)
    return [low, high]


def layer_data(f: Any) -> list[LayerData]:
    """Layer data tuples for an opened ``MRCFile``: one image layer, or amplitude and phase
    layers for complex data (napari draws no complex images)."""
    import dask
    import dask.array as da
    import numpy as np

    with dask.config.set({"array.chunk-size": CHUNK_BYTES}):
        data = f.to_dask(chunks="auto")
    # Sampled from the default chunks: fewer tasks to slice (0.3 s less for a million
    # frames), and dask's fusion reads only the sampled frames either way.
    sample = f.to_dask()
    if data.ndim == 2:
        # A single image: napari draws all of it, and sampling its contrast reads all of it;
        # read it once, here, for both (it was fetched twice over HTTP and S3).
        data = sample = data.persist()
    axes = f.axes
    meta: dict[str, Any] = {
        "name": f.store.basename or "mrc",
        "scale": [float(a["scale"]) for a in axes],
        "translate": [float(a["offset"]) for a in axes],
        "axis_labels": list(f.dimension_names()),
        "units": [_units(a) for a in axes],
        "metadata": {"source": f.name, "mrc_header": dict(f.header), "axes": axes},
    }
    if data.dtype.kind == "c":
        amplitude = da.absolute(data)
        limits = sampled_range(da.absolute(sample))
        return [
            (
                amplitude,
                {**meta, "name": meta["name"] + " amplitude"}
                | ({"contrast_limits": limits} if limits else {}),
                "image",
            ),
            (
                da.angle(data),
                {**meta, "name": meta["name"] + " phase", "contrast_limits": [-np.pi, np.pi]},
                "image",
            ),
        ]
    # uint8: napari takes 0..255 without reading; otherwise it reads to find a range.
    limits = _header_range(f.header)
    if limits is None and data.dtype != np.uint8:
        limits = sampled_range(sample)
    if limits is not None:
        meta["contrast_limits"] = limits
    return [(data, meta, "image")]


def read_mrc(path: str | list[str]) -> list[LayerData]:
    """Open ``path`` with :func:`intake_mrc.open_mrc` (header only) and return its layers."""
    from .api import open_mrc

    if isinstance(path, list | tuple):
        path = path[0]
    return layer_data(open_mrc(path))
