"""Array assembly: index selections -> byte runs -> numpy blocks, and the dask graph over them.

A ``FrameArray`` is the lazily indexed view of a stack of frames stored one after another:
its leading (navigation) axes map to frame numbers, linearly (a reshape of the stack) or
through a table (a non-raster scan, -1 meaning "nothing scanned here"); its last two axes
are the frame's rows and columns. Indexing it reads only the rows asked for, merged into as
few contiguous runs as possible and fetched concurrently by the store. ``to_dask`` wraps it
with ``dask.array.from_array``, so the graph holds the FrameArray once (a path, offsets,
storage options: no data, no handles) and each task holds only its slices.
"""

from __future__ import annotations

import math
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.utils import parse_bytes

from .format.decode import decode_rows
from .format.header import DataLayout
from .storage import ByteStore


def _normalize_key(key: Any, shape: tuple[int, ...]) -> tuple[list[np.ndarray | slice], list[int]]:
    """Per-axis selections (slices with step, or index arrays) and the axes that ints drop."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = next(i for i, k in enumerate(key) if k is Ellipsis)
        key = key[:i] + (slice(None),) * (len(shape) - len(key) + 1) + key[i + 1 :]
    key = key + (slice(None),) * (len(shape) - len(key))
    if len(key) != len(shape):
        raise IndexError(f"too many indices for an array of {len(shape)} dimensions")
    selections: list[np.ndarray | slice] = []
    dropped: list[int] = []
    for axis, (k, n) in enumerate(zip(key, shape, strict=False)):
        if isinstance(k, slice):
            selections.append(slice(*k.indices(n)))
        elif isinstance(k, int | np.integer):
            i = int(k) + n if k < 0 else int(k)
            if not 0 <= i < n:
                raise IndexError(f"index {k} is out of bounds for axis {axis} with size {n}")
            selections.append(slice(i, i + 1, 1))
            dropped.append(axis)
        else:
            index = np.asarray(k)
            if index.dtype == bool:
                index = np.flatnonzero(index)
            index = np.where(index < 0, index + n, index).astype(np.int64)
            if index.ndim != 1 or (index.size and (index.min() < 0 or index.max() >= n)):
                raise IndexError(f"index out of bounds for axis {axis} with size {n}")
            selections.append(index)
    return selections, dropped


def _as_index(selection: np.ndarray | slice) -> np.ndarray:
    if isinstance(selection, slice):
        return np.arange(selection.start, selection.stop, selection.step, dtype=np.int64)
    return selection


def merge_consecutive(units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs of consecutive unit numbers (in order): (first unit, count) per run."""
    if units.size == 0:
        return units, units
    breaks = np.flatnonzero(np.diff(units) != 1) + 1
    first = np.concatenate(([0], breaks))
    counts = np.diff(np.concatenate((first, [units.size])))
    return units[first], counts


class PaddedFrameTable:
    """The frame table of a stack that stopped early (an interrupted raster scan): position
    i (C order over ``shape``) holds frame i when i < ``n_frames``, else nothing (-1).

    It stands in for that int64 array where ``FrameArray`` uses one (``np.ix_`` grids,
    ``shape``, dask tokens) without allocating it: padding a scan of 10**9 positions costs
    nothing until blocks are read, and each block computes only its own frame numbers."""

    def __init__(self, shape: tuple[int, ...], n_frames: int):
        self.shape = tuple(int(n) for n in shape)
        self.n_frames = int(n_frames)
        self.ndim = len(self.shape)
        self.dtype = np.dtype(np.int64)

    def __getitem__(self, grids: tuple[np.ndarray, ...]) -> np.ndarray:
        if not isinstance(grids, tuple) or len(grids) != self.ndim:
            raise TypeError("a PaddedFrameTable takes one index grid per axis (np.ix_)")
        frames = np.asarray(np.ravel_multi_index(grids, self.shape), dtype=np.int64)
        frames[frames >= self.n_frames] = -1
        return frames

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The whole table (for code that wants an array: bounded by the grid cap)."""
        table = np.arange(math.prod(self.shape), dtype=np.int64)
        table[self.n_frames :] = -1
        return table.reshape(self.shape).astype(dtype or np.int64, copy=False)

    def __dask_tokenize__(self) -> tuple[str, tuple[int, ...], int]:
        return ("padded-frame-table", self.shape, self.n_frames)

    def __repr__(self) -> str:
        return f"PaddedFrameTable(shape={self.shape}, n_frames={self.n_frames})"


FrameTable = np.ndarray | PaddedFrameTable


class FrameArray:
    """A lazily read array of shape ``navigation_shape + (ny, nx)`` over stored frames."""

    def __init__(
        self,
        store: ByteStore,
        layout: DataLayout,
        navigation_shape: tuple[int, ...],
        frame_table: FrameTable | None = None,
        mmap_mode: str | None = None,
    ):
        self.store = store
        self.layout = layout
        self.navigation_shape = tuple(int(n) for n in navigation_shape)
        self.frame_table = frame_table
        self.mmap_mode = mmap_mode
        self.shape = self.navigation_shape + (layout.ny, layout.nx)
        self.dtype = layout.out_dtype
        self.ndim = len(self.shape)
        if frame_table is None and math.prod(self.navigation_shape) != layout.n_frames:
            raise ValueError(
                f"navigation shape {self.navigation_shape} does not hold {layout.n_frames} frames"
            )

    def __repr__(self) -> str:
        return f"FrameArray({self.store.name!r}, shape={self.shape}, dtype={self.dtype})"

    def _frames(self, selections: list[np.ndarray | slice]) -> np.ndarray:
        """Frame numbers for the navigation part of a selection (C order, -1 for empty)."""
        nav = selections[: len(self.navigation_shape)]
        if self.frame_table is not None:
            # Tables may be stored narrower (int32); byte offsets need int64.
            table = self.frame_table[np.ix_(*[_as_index(s) for s in nav])]
            return np.asarray(table, dtype=np.int64).ravel()
        if not nav:
            return np.zeros(1, dtype=np.int64)
        grids = np.ix_(*[_as_index(s) for s in nav])
        return np.ravel_multi_index(grids, self.navigation_shape).ravel().astype(np.int64)

    def _try_memmap(self, frames: np.ndarray, rows: slice) -> np.ndarray | None:
        """A memory map of the block when it is one run needing no decoding."""
        if self.mmap_mode is None or self.layout.needs_decoding or frames.size == 0:
            return None
        if (frames < 0).any() or (frames.size > 1 and (np.diff(frames) != 1).any()):
            return None
        if not (rows.step == 1 and rows.start == 0 and rows.stop == self.layout.ny):
            return None
        offset = self.layout.offset + int(frames[0]) * self.layout.frame_nbytes
        mapped = self.store.memmap(offset, frames.size * self.layout.frame_nbytes, self.mmap_mode)
        if mapped is None:
            return None
        return mapped.view(self.dtype).reshape(frames.size, self.layout.ny, self.layout.nx)

    def __getitem__(self, key: Any) -> np.ndarray:
        selections, dropped = _normalize_key(key, self.shape)
        n_nav = len(self.navigation_shape)
        nav_sizes = [len(_as_index(s)) for s in selections[:n_nav]]
        rows_sel, cols_sel = selections[n_nav], selections[n_nav + 1]
        frames = self._frames(selections)
        rows = _as_index(rows_sel)
        block = None
        if isinstance(rows_sel, slice):
            block = self._try_memmap(frames, rows_sel)
        if block is None:
            block = self._read_frames(frames, rows)
        if not (isinstance(cols_sel, slice) and cols_sel == slice(0, self.layout.nx, 1)):
            block = block[:, :, cols_sel]
        block = block.reshape(tuple(nav_sizes) + block.shape[1:])
        if dropped:
            block = block.reshape(tuple(n for i, n in enumerate(block.shape) if i not in dropped))
        return block

    def _read_frames(self, frames: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` of each frame in ``frames`` as (n_frames, n_rows, nx)."""
        layout = self.layout
        valid = frames >= 0
        wanted = frames[valid]
        out_shape = (frames.size, rows.size, layout.nx)
        if wanted.size == 0 or rows.size == 0:
            return np.zeros(out_shape, dtype=self.dtype)
        if rows.size == layout.ny and (rows == np.arange(layout.ny)).all():
            # Whole frames (every chunk): runs in frame units, one number per frame.
            units, unit_nbytes = wanted, layout.frame_nbytes
        else:
            units = (wanted[:, None] * layout.ny + rows[None, :]).ravel()
            unit_nbytes = layout.row_nbytes
        starts, counts = merge_consecutive(units)
        raw = self.store.read_runs(layout.offset + starts * unit_nbytes, counts * unit_nbytes)
        decoded = decode_rows(raw, layout).reshape(wanted.size, rows.size, layout.nx)
        if valid.all():
            return decoded
        out = np.zeros(out_shape, dtype=self.dtype)
        out[valid] = decoded
        return out

    def read(self) -> np.ndarray:
        """The whole array in memory, read into one buffer (no intermediate copies when the
        stored bytes need no decoding)."""
        layout = self.layout
        if self.frame_table is not None:
            return self[...]
        if layout.needs_decoding:
            raw = self.store.read_runs([layout.offset], [layout.nbytes])
            return decode_rows(raw, layout).reshape(self.shape)
        out = np.empty(self.shape, dtype=self.dtype)
        self.store.read_runs_into([layout.offset], [layout.nbytes], out.reshape(-1).view(np.uint8))
        return out


def _check_chunk_sizes(chunks: Any, ndim: int) -> None:
    """Whole numbers of frames per chunk are at least 1 (-1 or None: a whole axis), and a
    dict names axes that exist: dask divides by 0 and ignores axes it does not have."""
    if isinstance(chunks, dict):
        for axis in chunks:
            if not (isinstance(axis, int) and -ndim <= axis < ndim):
                raise ValueError(f"chunks {chunks!r}: no axis {axis} in {ndim} axes")
        values: list[Any] = list(chunks.values())
    elif isinstance(chunks, list | tuple):
        values = list(chunks)
    else:
        values = [chunks]
    for value in values:
        sizes = value if isinstance(value, list | tuple) else [value]
        for size in sizes:
            if isinstance(size, int | np.integer) and size != -1 and size < 1:
                raise ValueError(
                    f"chunks {chunks!r}: {size} frames per chunk; give at least 1, -1 (a whole "
                    "axis) or 'auto'"
                )


def plan_chunks(
    chunks: Any, shape: tuple[int, ...], dtype: np.dtype, n_nav: int
) -> tuple[tuple[int, ...], ...]:
    """Dask chunks with whole frames: ``chunks`` covers the navigation axes (or all axes,
    with the frame axes whole). "auto" picks blocks that are contiguous in the file."""
    frame_shape = shape[n_nav:]
    nav_shape = shape[:n_nav]
    if isinstance(chunks, str) and chunks == "auto":
        limit = parse_bytes(dask.config.get("array.chunk-size"))
        per_chunk = max(1, limit // max(1, math.prod(frame_shape) * dtype.itemsize))
        nav_chunks: list[Any] = []
        # From the last navigation axis outwards: take whole axes while they fit, then split
        # the next one; axes further out get chunks of one, which keeps blocks contiguous.
        remaining = per_chunk
        for n in reversed(nav_shape):
            if remaining >= n:
                nav_chunks.insert(0, n)
                remaining //= n
            else:
                nav_chunks.insert(0, max(1, remaining))
                remaining = 1
        spec: Any = tuple(nav_chunks) + tuple(frame_shape)
    else:
        _check_chunk_sizes(chunks, len(shape))
        if isinstance(chunks, dict):
            spec = {axis: -1 for axis in range(n_nav, len(shape))} | {
                (a + len(shape) if a < 0 else a): c for a, c in chunks.items()
            }
        elif isinstance(chunks, int | str):
            spec = (chunks,) * n_nav + tuple(frame_shape)
        else:
            chunks = tuple(chunks)
            if len(chunks) == n_nav:
                spec = chunks + tuple(frame_shape)
            elif len(chunks) == len(shape):
                spec = chunks
            else:
                raise ValueError(
                    f"chunks {chunks!r} must cover the {n_nav} stack axes or all {len(shape)} axes"
                )
    normalized = da.core.normalize_chunks(spec, shape, dtype=dtype)
    for axis in range(n_nav, len(shape)):
        if normalized[axis] != (shape[axis],):
            raise ValueError(
                f"chunks must hold whole frames: axis {axis} (a frame axis of size "
                f"{shape[axis]}) cannot be split, got {normalized[axis]}"
            )
    return normalized


def to_dask(frame_array: FrameArray, chunks: Any = "auto", name: str | None = None) -> da.Array:
    """A dask array over ``frame_array``; each task reads its block's byte runs."""
    n_nav = len(frame_array.navigation_shape)
    planned = plan_chunks(chunks, frame_array.shape, frame_array.dtype, n_nav)
    name = name or "mrc-" + tokenize(
        frame_array.store.token(),
        frame_array.layout,
        frame_array.navigation_shape,
        frame_array.mmap_mode,
        planned,
        frame_array.frame_table,  # dask hashes arrays by content, quickly
    )
    return da.from_array(
        frame_array,
        chunks=planned,
        name=name,
        asarray=False,
        fancy=True,  # dask fuses later slices into the read only for fancy getters
        meta=np.empty((0,) * frame_array.ndim, dtype=frame_array.dtype),
    )
