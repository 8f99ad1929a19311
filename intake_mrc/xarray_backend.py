"""xarray front end: ``MRCFile`` -> DataArray / Dataset, and the ``engine="mrc"`` backend.

One builder serves ``MRCFile.to_xarray()``/``to_dataset()`` (dask-backed), the intake reader
and the backend registered under the ``xarray.backends`` entry point (lazily indexed: a
selection reads only its own byte runs; xarray makes dask chunks from ``chunks=``). Dimensions
are the axes' names, coordinates ``offset + scale * index`` in the axes' units (nm, mrad, s;
"pixel"/"index" where unknown), attrs are flat and netCDF-safe.

xarray imports this module to list its engines: nothing heavy is imported at module level.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.core import indexing

if TYPE_CHECKING:
    import xarray as xr

    from .mrc import MRCFile

# Names guess_can_open accepts (the intake datatype's pattern), compressed maps included.
MRC_SUFFIX = re.compile(r"\.(mrc|mrcs|map|ccp4|rec|st|ali|preali)(\.gz|\.bz2)?$", re.IGNORECASE)


class MRCBackendArray(BackendArray):
    """The file's ``FrameArray`` in ``axis_order``, indexed the OUTER way (ints, slices and
    1-D integer arrays per axis): each selection reads only its rows."""

    def __init__(self, f: MRCFile):
        self.frame_array = f.frame_array
        self.permutation = f.axis_permutation
        self.shape = f.shape
        self.dtype = f.dtype

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.OUTER, self._raw_getitem
        )

    def _raw_getitem(self, key: tuple[Any, ...]) -> np.ndarray:
        if self.permutation is None:
            return self.frame_array[key]
        stored_key: list[Any] = [slice(None)] * len(key)
        for out_axis, stored_axis in enumerate(self.permutation):
            stored_key[stored_axis] = key[out_axis]
        block = self.frame_array[tuple(stored_key)]
        kept = [i for i, k in enumerate(stored_key) if not isinstance(k, int | np.integer)]
        return block.transpose([kept.index(i) for i in self.permutation if i in kept])


def _attr_value(value: Any) -> Any:
    """A netCDF-safe attribute value (str, number, list of numbers), or None to omit it."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | float | str | np.number):
        return value.item() if isinstance(value, np.number) else value
    if isinstance(value, bytes):
        return value.hex(" ")
    if isinstance(value, list | tuple):
        if all(isinstance(v, str) for v in value):
            return "\n".join(value)
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            return list(value)
        return json.dumps(json_safe(value))
    return json.dumps(json_safe(value))


def json_safe(value: Any) -> Any:
    """Plain JSON values: NaN/inf -> None, bytes -> hex, numpy -> Python, structured
    arrays -> dict of lists."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype.names:
            return {n: json_safe(value[n].tolist()) for n in value.dtype.names}
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, bytes):
        return value.hex(" ")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def file_attrs(f: MRCFile) -> dict[str, Any]:
    """Flat, netCDF- and JSON-safe attrs: the header (``mrc_`` + field), the reader's
    decisions, the voxel size (NaN where unknown: netCDF has no None) and, for a DE movie,
    its summary (``de_`` + key) and every info-file value as JSON."""
    attrs: dict[str, Any] = {"source": f.name}
    for key, value in f.header.items():
        safe = _attr_value(value)
        if safe is not None:
            attrs[f"mrc_{key}"] = safe
    attrs["voxel_size_angstrom"] = [math.nan if v is None else float(v) for v in f.voxel_size]
    attrs["axis_order"] = f.axis_order
    mrc = f.metadata.get("mrc", {})
    for key in ("byte_order_rule", "signed_bytes_rule", "origin_rule", "extended_header_type"):
        if mrc.get(key) is not None:
            attrs[key] = str(mrc[key])
    if f.notes:
        attrs["notes"] = "\n".join(f.notes)
    de = f.metadata.get("direct_electron")
    if de:
        for key, value in de.get("summary", {}).items():
            safe = _attr_value(value)
            if safe is not None:
                attrs[f"de_{key}"] = safe
        attrs["direct_electron_values_json"] = json.dumps(json_safe(de.get("values", {})))
        if de.get("info_file"):
            attrs["direct_electron_info_file"] = str(de["info_file"])
    scan = f.metadata.get("scan")
    if scan:
        attrs["scan_kind"] = str(scan.get("kind"))
    return attrs


def _coords(f: MRCFile, dims: list[str]) -> dict[str, Any]:
    import xarray as xr

    coords = {}
    for dim, (name, (values, units)) in zip(dims, f.coordinates().items(), strict=True):
        del name  # f.coordinates() names are f.dimension_names(), renamed by the caller
        attrs = {"units": units}
        coords[dim] = xr.Variable(dim, values, attrs=attrs)
    return coords


def variable_name(f: MRCFile) -> str:
    """The array's name: the file's base name (``EMD-3001.map``), never a dask token."""
    store = getattr(f.store, "inner", f.store)  # a compressed file: the name as stored
    return store.basename or "data"


def _variable(f: MRCFile, dims: list[str], lazy: str, chunks: Any = None) -> Any:
    """The data as an xarray Variable: dask-backed (``lazy="dask"``, ``chunks`` as for
    ``to_dask``) or lazily indexed with preferred chunks (``lazy="backend"``)."""
    import xarray as xr

    from .array import plan_chunks

    attrs = file_attrs(f)
    if lazy == "dask":
        return xr.Variable(dims, f.to_dask(chunks), attrs=attrs)
    fa = f.frame_array
    stored = plan_chunks("auto", fa.shape, fa.dtype, len(fa.navigation_shape))
    order = f.axis_permutation or range(len(stored))
    preferred = {dim: stored[i] for dim, i in zip(dims, order, strict=True)}
    data = indexing.LazilyIndexedArray(MRCBackendArray(f))
    return xr.Variable(dims, data, attrs=attrs, encoding={"preferred_chunks": preferred})


def to_dataarray(f: MRCFile, name: str | None = None, chunks: Any = None) -> xr.DataArray:
    """A dask-backed DataArray named after the file, with coordinates and attrs."""
    import xarray as xr

    dims = f.dimension_names()
    variable = _variable(f, dims, "dask", chunks)
    return xr.DataArray(
        variable, coords=_coords(f, dims), name=name or variable_name(f), attrs=variable.attrs
    )


def _image_items(f: MRCFile) -> Iterable[tuple[str, MRCFile]]:
    for kind, images in (("virtual", f.virtual_images), ("external", f.external_images)):
        for image_name, image in images.items():
            yield f"{kind}:{image_name}".replace("/", "_"), image


def to_dataset(
    f: MRCFile, images: bool = True, name: str | None = None, lazy: str = "dask"
) -> xr.Dataset:
    """A Dataset holding the file's array and, with ``images`` (DE movies), each virtual
    and external image as ``virtual:<name>`` / ``external:<name>``. An image with one value
    per scan point shares the movie's scan dimensions and coordinates; others get their own
    (``<variable>_y``, ``<variable>_x``)."""
    import xarray as xr

    dims = f.dimension_names()
    main = name or variable_name(f)
    variables = {main: _variable(f, dims, lazy)}
    coords = _coords(f, dims)
    if images:
        navigation = [(d, a["size"]) for d, a in zip(dims, f.axes, strict=True) if a["navigate"]]
        grid = [(d, n) for d, n in navigation if d in ("y", "x")]
        # One value per frame (the whole navigation: a line, repeats) or per scan point.
        candidates = [c for c in (navigation, grid) if c]
        for var_name, image in _image_items(f):
            own_dims = [f"{var_name}_{d}" for d in image.dimension_names()]
            variable = _variable(image, own_dims, lazy)
            scan = _scan_layout(tuple(image.shape), candidates)
            if scan is not None:
                # Laid out on the movie's own dimensions (axes of 1 it lacks dropped).
                if len(variable.shape) != len(scan):
                    variable = variable.squeeze()
                variable.dims = tuple(d for d, _ in scan)
                variable.encoding.pop("preferred_chunks", None)
            else:
                coords.update(_coords(image, own_dims))
            variables[var_name] = variable
    attrs = {k: v for k, v in variables[main].attrs.items()}
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def _scan_layout(
    shape: tuple[int, ...], candidates: list[list[tuple[str, int]]]
) -> list[tuple[str, int]] | None:
    """The first candidate (dimension, size) list an image of ``shape`` lays out: exactly,
    or once its axes of 1 are dropped (then the candidate must have none)."""
    for scan in candidates:
        sizes = [n for _, n in scan]
        if list(shape) == sizes:
            return scan
        if 1 not in sizes and [n for n in shape if n != 1] == sizes:
            return scan
    return None


class MRCBackendEntrypoint(BackendEntrypoint):
    """``xr.open_dataarray(path_or_url, engine="mrc", chunks={}, storage_options=...)``.

    One data variable named after the file (``name=`` overrides: give the same name to
    every file for ``open_mfdataset``); ``images=True`` adds a DE movie's virtual and
    external images (``open_dataset`` only). ``chunks={}`` gives intake_mrc's own chunks
    (whole frames, contiguous in the file); ``chunks=None`` reads on access, only what is
    indexed. Remote URLs need ``engine="mrc"`` (netCDF4 claims every remote URL first).
    """

    description = "MRC2014 / CCP4 maps (FEI, IMOD, Direct Electron) via intake_mrc and fsspec"
    url = "https://github.com/intake/intake-mrc"
    open_dataset_parameters = (
        "filename_or_obj",
        "drop_variables",
        "storage_options",
        "navigation_shape",
        "signed_bytes",
        "axis_order",
        "metadata_file",
        "scan_file",
        "partial_scan",
        "virtual_images",
        "external_images",
        "mmap_mode",
        "images",
        "name",
    )

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        drop_variables: Any = None,
        storage_options: dict[str, Any] | None = None,
        navigation_shape: Any = None,
        signed_bytes: str = "auto",
        axis_order: str = "file",
        metadata_file: Any = "auto",
        scan_file: Any = "auto",
        partial_scan: str = "error",
        virtual_images: Any = None,
        external_images: Any = None,
        mmap_mode: str | None = "c",
        images: bool = False,
        name: str | None = None,
    ) -> xr.Dataset:
        from .api import open_mrc

        source = (
            os.fspath(filename_or_obj)
            if isinstance(filename_or_obj, os.PathLike)
            else (filename_or_obj)
        )
        f = open_mrc(
            source,
            storage_options=storage_options,
            navigation_shape=navigation_shape,
            signed_bytes=signed_bytes,  # type: ignore[arg-type]
            axis_order=axis_order,  # type: ignore[arg-type]
            metadata_file=metadata_file,
            scan_file=scan_file,
            partial_scan=partial_scan,  # type: ignore[arg-type]
            virtual_images=virtual_images,
            external_images=external_images,
            mmap_mode=mmap_mode,
        )
        ds = to_dataset(f, images=images, name=name, lazy="backend")
        if drop_variables:
            ds = ds.drop_vars(
                [drop_variables] if isinstance(drop_variables, str) else list(drop_variables),
                errors="ignore",
            )
        return ds

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        if isinstance(filename_or_obj, os.PathLike):
            filename_or_obj = os.fspath(filename_or_obj)
        if not isinstance(filename_or_obj, str):
            return False
        path = filename_or_obj
        if "://" in path:  # a URL: the name ends before its query
            path = path.split("?", 1)[0]
        return MRC_SUFFIX.search(path) is not None
