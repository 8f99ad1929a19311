"""Write Direct Electron acquisitions for tests: a movie whose frame k is filled with k, an
info file in DE's layout (keys padded to 64 characters), virtual/external images, and a
scan-coordinates CSV for custom scans."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from mrcwriter import write_mrc


def info_text(values: dict[str, object], crlf: bool = False) -> str:
    lines = [f"{key:<64}= {value}" for key, value in values.items()]
    return ("\r\n" if crlf else "\n").join(lines) + "\n"


def write_acquisition(
    folder: Path,
    dataset: str = "20250101_00001",
    suffix: str | None = None,
    scan: tuple[int, int] = (5, 3),
    frame: tuple[int, int] = (6, 4),
    repeats: int = 1,
    n_frames: int | None = None,
    scan_type: str = "Raster",
    roi: tuple[int, int] | None = None,
    coordinates: np.ndarray | None = None,
    virtual_names=("Virt #0", "Virt #1"),
    external_names=("Ext #1",),
    extra: dict | None = None,
    crlf: bool = False,
    dtype: str = "u2",
    virtual_per_frame: bool = False,
) -> dict:
    """Returns the paths and the expected arrays. ``scan`` and ``frame`` are (x, y).
    Virtual images hold one value per scan point, or with ``virtual_per_frame`` one per
    frame (repeats included), stored as a (repeats, y, x) stack; value = index * (n + 1)
    for virtual image n."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = dataset + (f"_{suffix}" if suffix else "")
    sx, sy = roi or scan
    kx, ky = frame
    if n_frames is None:
        n_frames = len(coordinates) if coordinates is not None else repeats * sx * sy
    movie = np.empty((n_frames, ky, kx), dtype=dtype)
    movie[...] = (np.arange(n_frames) % np.iinfo(dtype).max)[:, None, None]
    paths = {"movie": write_mrc(folder / f"{stem}_movie.mrc", movie)}
    values = {
        "Dataset Name": dataset,
        "Autosave Filename Suffix": suffix or "",
        "Camera Model": "TestCam",
        "Instrument Project TEMorSTEM Mode": 1,
        "Scan - Enable": "Enable",
        "Scan - Type": scan_type,
        "Scan - Size X": scan[0],
        "Scan - Size Y": scan[1],
        "Scan - ROI Enable": "Enable" if roi else "Disable",
        "Scan - ROI Size X": roi[0] if roi else scan[0],
        "Scan - ROI Size Y": roi[1] if roi else scan[1],
        "Scan - ROI Offset X": 1 if roi else 0,
        "Scan - ROI Offset Y": 0,
        "Scan - Repeats": repeats,
        "Scan - Time Per Scan (seconds)": 0.5,
        "Image Size X (pixels)": kx,
        "Image Size Y (pixels)": ky,
        "Frame Count": n_frames,
        "Frames Per Second": 1000,
        "Specimen Pixel Size X (nanometers)": 0.25,
        "Specimen Pixel Size Y (nanometers)": 0.5,
        "Diffraction Pixel Size X": 0.75,
        "Diffraction Pixel Size Y": 1.25,
        "Instrument Project Camera Length (centimeters)": 8,
        "ADUs Per Electron": 32,
        "Autosave Movie Frames File Path": f"D:\\DEOutput\\{stem}_movie.mrc",
    }
    virtual = {}
    for n, name in enumerate(virtual_names):
        planes = repeats if virtual_per_frame else 1
        image = (np.arange(planes * sx * sy, dtype=np.float32) * (n + 1)).reshape(planes, sy, sx)
        path = write_mrc(folder / f"{stem}_{n}_{name}_total_sum.mrc", image)
        virtual[name] = (path, image.reshape(sy, sx) if planes == 1 else image)
        values[f"Autosave Virtual Image {n} File Path"] = f"D:\\DEOutput\\{path.name}"
    external = {}
    for n, name in enumerate(external_names, start=1):
        image = np.full((1, sy, sx), 100.0 * n, dtype=np.float32)
        path = write_mrc(folder / f"{stem}_ext{n}_{name}.mrc", image)
        external[name] = (path, image)
        values[f"Autosave External Image {n} File Path"] = f"D:\\DEOutput\\{path.name}"
    values.update(extra or {})
    paths["info"] = folder / f"{stem}_info.txt"
    paths["info"].write_bytes(info_text(values, crlf).encode())
    if coordinates is not None:
        paths["csv"] = folder / f"{stem}_scan_coordinates.csv"
        paths["csv"].write_text("\n".join(f"{x},{y}" for x, y in coordinates) + "\n")
    return {
        "paths": paths,
        "virtual": virtual,
        "external": external,
        "stem": stem,
        "n_frames": n_frames,
        "all": [p for p in folder.iterdir() if p.name.startswith(stem)],
    }
