"""Encode small MRC files as bytes (for the demo and examples): header + extended header +
data, little-endian, MRC2014. Pure: arrays in, bytes out."""

from __future__ import annotations

import numpy as np

from .extended import fei_dtype
from .header import MODES, header_dtype

_MODE_OF = {np.dtype(v[1]).str[1:]: k for k, v in MODES.items() if k not in (3, 101)}
_MODE_OF["u1"] = 0


def encode_mrc(
    data: np.ndarray,
    voxel_size: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ispg: int | None = None,
    extended: bytes = b"",
    exttyp: str = "",
    labels: tuple[str, ...] = (),
) -> bytes:
    """An MRC2014 file holding ``data`` (2-D image or 3-D stack/volume)."""
    data = np.ascontiguousarray(data)
    kind = data.dtype.str[1:]
    if kind not in _MODE_OF:
        raise ValueError(f"no MRC mode for dtype {data.dtype}")
    stack = data.reshape((1,) + data.shape) if data.ndim == 2 else data
    nz, ny, nx = stack.shape
    header = np.zeros(1, header_dtype("<"))
    for name, value in (
        ("nx", nx),
        ("ny", ny),
        ("nz", nz),
        ("mx", nx),
        ("my", ny),
        ("mz", 1 if ispg in (None, 0) else nz),
        ("mode", _MODE_OF[kind]),
        ("mapc", 1),
        ("mapr", 2),
        ("maps", 3),
        ("nsymbt", len(extended)),
        ("nversion", 20141),
        ("ispg", 0 if ispg is None else ispg),
    ):
        header[name] = value
    header["cella"] = [
        voxel_size[0] * nx,
        voxel_size[1] * ny,
        voxel_size[2] * (1 if ispg in (None, 0) else nz),
    ]
    header["cellb"] = [90.0, 90.0, 90.0]
    header["exttyp"] = exttyp.encode()
    header["map"] = b"MAP "
    header["machst"] = [0x44, 0x44, 0, 0]
    header["dmin"], header["dmax"], header["dmean"] = data.min(), data.max(), data.mean()
    header["rms"] = -1
    header["nlabl"] = len(labels)
    for i, label in enumerate(labels[:10]):
        header["label"][0, i] = label.encode()[:80]
    return header.tobytes() + extended + stack.astype(stack.dtype.newbyteorder("<")).tobytes()


def encode_fei2_records(n: int, values: dict[str, object]) -> bytes:
    """``n`` FEI2 extended-header records (888 bytes each) with the given fields set."""
    records = np.zeros(n, fei_dtype("FEI2", "<"))
    records["Metadata size"] = records.dtype.itemsize
    records["Metadata version"] = 2
    for key, value in values.items():
        records[key] = value
    return records.tobytes()
