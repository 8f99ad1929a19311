"""``intake-mrc demo``: the whole path on embedded defaults, with no credentials and no
internet.

It writes a small set of MRC files (a Direct Electron 4D-STEM acquisition with virtual and
external images, an EPU-like image with an FEI2 extended header, a volume), serves them
from an S3 server it starts on 127.0.0.1 (moto), builds a catalog of the bucket by glob,
writes it under the working directory, opens it with intake, computes something real from
each entry, prints what it did and stops the server. From a source checkout it also serves
the sample files of tests/data from s3://intake-mrc-samples on the same server and reads
every entry of catalogs/remote-samples.yaml there (that bucket is the catalog's default
root).
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .format.writer import encode_fei2_records, encode_mrc

BUCKET = "intake-mrc-demo"
SCAN_X, SCAN_Y, K = 24, 16, 32  # scan shape (x, y) and frame size
DISC_RADIUS = 6


def _info_text(values: dict[str, Any]) -> str:
    return "".join(f"{key:<64}= {value}\r\n" for key, value in values.items())


def _disc_mask() -> np.ndarray:
    ky, kx = np.mgrid[0:K, 0:K]
    return (ky - K / 2) ** 2 + (kx - K / 2) ** 2 <= DISC_RADIUS**2


def write_demo_files(folder: Path) -> dict[str, Path]:
    """The demo data set; returns the files by role."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2026)
    y, x = np.mgrid[0:SCAN_Y, 0:SCAN_X]
    # A "specimen": thickness that scatters electrons out of the central disc.
    thickness = np.exp(-((x - 15) ** 2 + (y - 7) ** 2) / 30.0)
    disc = _disc_mask()
    movie = np.empty((SCAN_Y, SCAN_X, K, K), dtype=np.uint16)
    for j in range(SCAN_Y):
        for i in range(SCAN_X):
            frame = rng.poisson(2.0, (K, K))
            frame[disc] += rng.poisson(200 * (1 - 0.8 * thickness[j, i]), int(disc.sum()))
            movie[j, i] = frame
    bright_field = movie[:, :, disc].sum(axis=-1).astype(np.float32)
    stem = "20261126_00042"
    files = {
        "movie": folder / f"{stem}_movie.mrc",
        "info": folder / f"{stem}_info.txt",
        "virtual": folder / f"{stem}_0_Virt #0_total_sum.mrc",
        "external": folder / f"{stem}_ext1_Ext #1.mrc",
        "epu": folder / "FoilHole_1234_Data_5678_20261126_120000.mrc",
        "volume": folder / "tomogram_bin4.mrc",
    }
    files["movie"].write_bytes(encode_mrc(movie.reshape(-1, K, K), ispg=0))
    files["virtual"].write_bytes(encode_mrc(bright_field[None]))
    files["external"].write_bytes(encode_mrc((1 - bright_field / bright_field.max())[None]))
    files["info"].write_text(
        _info_text(
            {
                "Dataset Name": stem,
                "Camera Model": "DemoCam",
                "Instrument Project TEMorSTEM Mode": 1,
                "Scan - Enable": "Enable",
                "Scan - Type": "Raster",
                "Scan - Size X": SCAN_X,
                "Scan - Size Y": SCAN_Y,
                "Scan - ROI Enable": "Disable",
                "Scan - Repeats": 1,
                "Image Size X (pixels)": K,
                "Image Size Y (pixels)": K,
                "Frame Count": SCAN_X * SCAN_Y,
                "Frames Per Second": 2000,
                "Specimen Pixel Size X (nanometers)": 0.5,
                "Specimen Pixel Size Y (nanometers)": 0.5,
                "Diffraction Pixel Size X": 0.25,
                "Diffraction Pixel Size Y": 0.25,
                "Instrument Project Camera Length (centimeters)": 12,
                "Autosave Movie Frames File Path": f"D:\\DEOutput\\{files['movie'].name}",
                "Autosave Virtual Image 0 File Path": f"D:\\DEOutput\\{files['virtual'].name}",
                "Autosave External Image 1 File Path": f"D:\\DEOutput\\{files['external'].name}",
            }
        )
    )
    image = rng.normal(100.0, 10.0, (64, 64)).astype(np.float32)
    extended = encode_fei2_records(
        1, {"Pixel size X": 1.06e-10, "Pixel size Y": 1.06e-10, "HT": 300e3, "Dose": 4.2e20}
    )
    files["epu"].write_bytes(encode_mrc(image, extended=extended, exttyp="FEI2"))
    volume = rng.normal(0.0, 1.0, (32, 32, 32)).astype(np.float32)
    files["volume"].write_bytes(encode_mrc(volume, voxel_size=(10.0, 10.0, 10.0), ispg=1))
    return files


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_preview(f: Any, path: Path) -> str | None:
    """The entry's picture (navigator beside a diffraction pattern); None without matplotlib."""
    try:
        shown = f.preview(str(path))
    except ImportError as error:
        print(f"    no preview: {error}")
        return None
    print(f"    preview: {path}  ({shown.caption})")
    return str(path)


SAMPLES_BUCKET = "intake-mrc-samples"  # catalogs/remote-samples.yaml's default root


def _repository() -> Path | None:
    """The source checkout this package runs from (an editable install), if any: it holds
    catalogs/ and the sample files in tests/data/, which a wheel does not."""
    root = Path(__file__).resolve().parents[1]
    if (root / "catalogs" / "remote-samples.yaml").is_file() and (root / "tests" / "data").is_dir():
        return root
    return None


def _remote_samples(options: dict[str, Any]) -> dict[str, Any] | None:
    """Serve the repository's sample files from s3://intake-mrc-samples (the default root of
    catalogs/remote-samples.yaml) on the same loopback server and read every entry of that
    catalog through intake. Skipped, saying why, outside a source checkout."""
    import intake
    import s3fs

    root = _repository()
    if root is None:
        print("catalogs/remote-samples.yaml: not in a source checkout, skipped")
        return None
    fs = s3fs.S3FileSystem(**options)
    fs.mkdir(SAMPLES_BUCKET)
    data = root / "tests" / "data"
    for folder in ("rsciio_mrc", "mrcfile_tests"):
        for path in sorted((data / folder).iterdir()):
            if path.is_file() and path.suffix != ".md":
                fs.put_file(str(path), f"{SAMPLES_BUCKET}/{folder}/{path.name}")
    print(f"serving the sample files of tests/data from s3://{SAMPLES_BUCKET}/")
    catalog = intake.open_catalog(str(root / "catalogs" / "remote-samples.yaml"))
    cat = catalog(options=options)  # the default root, s3://intake-mrc-samples
    shapes: dict[str, Any] = {}
    for name in cat:
        try:
            value = cat[name].read()
        except ImportError as error:  # the xarray entry without xarray installed
            print(f"[remote-samples.yaml:{name}] skipped: {error}")
            continue
        shapes[name] = tuple(value.shape)
        print(f"[remote-samples.yaml:{name}] {type(value).__name__} {value.shape} {value.dtype}")
    return shapes


def run(output_dir: str | Path = "demo-output") -> dict[str, Any]:
    """Run the demo; returns what it computed (the CLI prints it as it goes)."""
    import logging

    import intake
    import s3fs

    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise RuntimeError(
            "the demo needs a local S3 server: pip install 'intake-mrc[demo]'"
        ) from None

    from .catalog import write_catalog

    output = Path(output_dir).resolve()
    output.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    # moto accepts any credentials; these exist only in this process's environment and are
    # never written to the catalog.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "demo-access-key")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "demo-secret-key")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request log lines
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    options = {"client_kwargs": {"endpoint_url": endpoint}}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            files = write_demo_files(Path(tmp))
            print(
                f"wrote {len(files)} demo files ({sum(p.stat().st_size for p in files.values())}"
                " bytes)"
            )
            fs = s3fs.S3FileSystem(**options)
            fs.mkdir(BUCKET)
            for path in files.values():
                fs.put_file(str(path), f"{BUCKET}/session-1/{path.name}")
        print(f"serving them from s3://{BUCKET}/session-1/ on {endpoint} (moto, loopback)")
        catalog_path = output / "catalog.yaml"
        start = time.perf_counter()
        n = write_catalog(f"s3://{BUCKET}/session-1/", str(catalog_path), options)
        print(
            f"catalog glob: {n} entries -> {catalog_path} "
            f"({time.perf_counter() - start:.2f} s, one bucket listing)"
        )
        cat = intake.open_catalog(str(catalog_path))
        for name in cat:
            reader = cat[name]
            kind = reader.metadata.get("kind")
            f = (
                reader.to_mrcfile(chunks=(4, -1))
                if kind == "direct_electron"
                else reader.to_mrcfile()
            )
            arr = f.to_dask()
            if kind == "direct_electron":
                disc = _disc_mask()
                bf = (arr * disc).sum(axis=(-2, -1), dtype=np.float64).compute()
                stored = f.virtual_images["Virt #0"].read()
                diff = float(np.abs(bf - stored).max())
                axes = ", ".join(
                    f"{a['name']} {a['size']}x{a['scale']:g}{a['units'] or ''}" for a in f.axes
                )
                print(
                    f"[{name}] DE 4D-STEM {arr.shape} {arr.dtype} in {arr.npartitions} "
                    f"chunk(s); axes: {axes}"
                )
                print(
                    f"    virtual bright field from the movie: min {bf.min():.0f}, "
                    f"max {bf.max():.0f}; max |difference| to the saved 'Virt #0': {diff:g}"
                )
                results[name] = {"bright_field_max_difference": diff, "shape": arr.shape}
                results[name]["preview"] = _write_preview(f, output / f"{name}-preview.png")
            else:
                mean = float(arr.mean().compute())
                size = f.voxel_size
                print(
                    f"[{name}] {arr.shape} {arr.dtype}, mean {mean:.4f}, voxel size "
                    f"{tuple(None if v is None else round(v, 3) for v in size)} Å, extended "
                    f"header {f.extended_header_type}"
                )
                results[name] = {"mean": mean, "shape": arr.shape}
        print("done: every entry read through intake from the S3 server")
        samples = _remote_samples(options)
        if samples is not None:
            results["remote_samples"] = samples
    finally:
        server.stop()
        print("stopped the S3 server")
    return results
