"""napari for real: open MRC files in a napari viewer through the intake-mrc reader and check
what a person would see (issue 10, napari bullet; the test suite only calls the reader).

Run in a venv of its own with napari and a Qt binding (not the test venv):

    python3 -m venv .venv-napari
    .venv-napari/bin/pip install -e ".[napari]" pyqt5
    .venv-napari/bin/python tools/napari_check.py [--out napari-check] [--keep-data]

What it does, each with ``napari.Viewer(show=False)`` and ``viewer.open(src,
plugin="intake-mrc")``:

* a local EMDB map (tests/data/mrcfile_tests/EMD-3197.map);
* the Direct Electron 4D-STEM movie of tests/data/rsciio_mrc (its header says DMIN > DMAX:
  no range) and a larger DE movie written here with our writer (12.6 million values, info
  file beside it, header range "not computed" as DE-Server writes it);
* the EMDB map, the written DE movie and a 16 MiB volume over HTTP, from an aiohttp static
  server on 127.0.0.1 that honours Range and counts the bytes it sends;
* the command line: ``napari FILE --plugin intake-mrc`` and ``napari URL`` (no --plugin) in
  a subprocess, with a napari startup script (NAPARI_CONFIG) that takes a screenshot after
  the event loop has run and closes the viewer.

For each it checks: the layer data is a dask array, HTTP bytes served while napari opens and
draws are a small part of the file, scale/translate/units/axis labels are the file's axes,
contrast limits are set by the reader (napari then reads nothing for them), and the
window screenshot (PNG in --out) is not blank. It prints one line per check and exits 1 if
any failed.

Display: vispy needs OpenGL. With ``QT_QPA_PLATFORM=offscreen`` and no X display, napari fails
when it creates the canvas (``glGetParameter`` returns None), so when DISPLAY is unset the
script runs itself again under ``xvfb-run`` (Debian package xvfb).
``viewer.screenshot(canvas_only=True)`` came out black in that setup (napari 0.9.2, PyQt5,
Mesa llvmpipe); the window grab (``canvas_only=False``) shows the canvas, so that is what is
saved.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
EMD = DATA / "mrcfile_tests" / "EMD-3197.map"
RSCIIO_MOVIE = DATA / "rsciio_mrc" / "20241021_00405_movie.mrc"
RSCIIO_INFO = DATA / "rsciio_mrc" / "20241021_00405_info.txt"
WINDOW = (1100, 700)

RESULTS: list[tuple[str, str, bool, str]] = []
VERBOSE = os.environ.get("NAPARI_CHECK_VERBOSE") == "1"


def check(case: str, name: str, ok: bool, detail: str = "") -> bool:
    RESULTS.append((case, name, bool(ok), detail))
    print(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)
    return bool(ok)


# --- display -----------------------------------------------------------------------------


def ensure_display(argv: list[str]) -> None:
    """Re-run this script under ``xvfb-run`` when there is no X display (vispy needs GLX even
    with Qt's offscreen platform); xvfb-run stops its server when the script ends."""
    if os.environ.get("DISPLAY"):
        return
    xvfb_run = shutil.which("xvfb-run")
    if xvfb_run is None:
        sys.exit("no DISPLAY and no xvfb-run: install Debian's xvfb (napari's canvas needs GL)")
    command = [xvfb_run, "-a", "-s", "-screen 0 1280x1024x24", sys.executable, __file__, *argv]
    os.execv(xvfb_run, command)


# --- data ----------------------------------------------------------------------------------


def _not_computed(raw: bytes) -> bytes:
    """DE-Server writes DMIN 2, DMAX 1, DMEAN 0 (MRC2014: DMAX < DMIN = range not computed)."""
    from intake_mrc.format.header import header_dtype

    header = np.frombuffer(raw[:1024], header_dtype("<")).copy()
    header["dmin"], header["dmax"], header["dmean"] = 2.0, 1.0, 0.0
    return header.tobytes() + raw[1024:]


def write_de_movie(folder: Path, scan=(48, 64), k: int = 64) -> Path:
    """A DE 4D-STEM raster movie (scan y, x; k x k frames, uint16) with its info file: a bright
    disc dimmed where a round 'specimen' scatters, so the screenshot has something to show."""
    from intake_mrc.format.writer import encode_mrc

    sy, sx = scan
    rng = np.random.default_rng(10)
    y, x = np.mgrid[0:sy, 0:sx]
    thickness = np.exp(-((x - sx * 0.6) ** 2 + (y - sy * 0.4) ** 2) / (0.05 * sx * sy))
    ky, kx = np.mgrid[0:k, 0:k]
    disc = (ky - k / 2) ** 2 + (kx - k / 2) ** 2 <= (k / 6) ** 2
    movie = rng.poisson(3.0, (sy, sx, k, k)).astype(np.uint16)
    movie[:, :, disc] += (400 * (1 - 0.8 * thickness))[..., None].astype(np.uint16)
    stem = "20261128_00010"
    path = folder / f"{stem}_movie.mrc"
    path.write_bytes(_not_computed(encode_mrc(movie.reshape(-1, k, k), ispg=0)))
    info = {
        "Dataset Name": stem,
        "Camera Model": "CheckCam",
        "Instrument Project TEMorSTEM Mode": 1,
        "Scan - Enable": "Enable",
        "Scan - Type": "Raster",
        "Scan - Size X": sx,
        "Scan - Size Y": sy,
        "Scan - ROI Enable": "Disable",
        "Scan - Repeats": 1,
        "Image Size X (pixels)": k,
        "Image Size Y (pixels)": k,
        "Frame Count": sx * sy,
        "Specimen Pixel Size X (nanometers)": 0.5,
        "Specimen Pixel Size Y (nanometers)": 0.5,
        "Diffraction Pixel Size X": 0.25,
        "Diffraction Pixel Size Y": 0.25,
        "Instrument Project Camera Length (centimeters)": 12,
    }
    text = "".join(f"{key:<64}= {value}\r\n" for key, value in info.items())
    (folder / f"{stem}_info.txt").write_text(text)
    return path


def write_volume(folder: Path, n: int = 64, size: int = 256) -> Path:
    """A float32 volume (n x size x size, 16 MiB at the defaults): a hollow sphere, 0.8 nm
    voxels, header range not computed."""
    from intake_mrc.format.writer import encode_mrc

    z, y, x = np.ogrid[0:n, 0:size, 0:size]
    r = np.sqrt(((z - n / 2) * size / n) ** 2 + (y - size / 2) ** 2 + (x - size / 2) ** 2)
    # a faint ramp along x, so the picture shows which way x runs
    volume = (np.exp(-((r - size / 3) ** 2) / 40.0) + 0.2 * x / size).astype(np.float32)
    path = folder / "shell.mrc"
    path.write_bytes(_not_computed(encode_mrc(volume, voxel_size=(8.0, 8.0, 8.0), ispg=1)))
    return path


# --- HTTP server ---------------------------------------------------------------------------


class CountingServer:
    """aiohttp static files (Range honoured, directory pages on) on 127.0.0.1, counting the
    body bytes of every response it prepares."""

    def __init__(self, root: Path):
        self.root = root
        self.sent: list[tuple[str, str, str | None, int]] = []
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import asyncio

        from aiohttp import web

        async def on_prepare(request, response):
            length = response.content_length or 0
            if request.method == "HEAD":
                length = 0
            self.sent.append((request.method, request.path, request.headers.get("Range"), length))

        async def start() -> None:
            app = web.Application()
            app.on_response_prepare.append(on_prepare)
            app.router.add_static("/", str(self.root), show_index=True)
            self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(start())
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> CountingServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("HTTP server did not start")
        return self

    def stop(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def bytes_for(self, name: str, since: int = 0) -> int:
        return sum(n for _, path, _, n in self.sent[since:] if path.endswith("/" + name))

    def url_of(self, path: Path) -> str:
        return f"{self.url}/{quote(path.relative_to(self.root).as_posix())}"


# --- viewer checks -------------------------------------------------------------------------


def _process_events(seconds: float = 0.5) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def show_scale_bar(viewer: Any) -> None:
    """The scale bar (its unit is the layer's, from our reader) at the bottom left: at the
    bottom right, its text was cut by the window's edge in the grab."""
    overlays = getattr(getattr(viewer, "canvas", None), "overlays", None)
    bar = overlays.scale_bar if overlays is not None else viewer.scale_bar  # napari < 0.9
    bar.visible = True
    bar.position = "bottom_left"


def _not_blank(png: np.ndarray) -> tuple[bool, str]:
    """The canvas of a window grab (right of the layer panel, above the sliders; measured
    on the 1100 x 700 window) has more than a few grey levels."""
    height, width = png.shape[:2]
    canvas = png[35 : height - 85, 355 : width - 5, :3].astype(float)
    levels = len(np.unique(canvas[..., 0]))
    return canvas.std() > 1.0 and levels > 8, f"canvas std {canvas.std():.1f}, {levels} levels"


def check_viewer(
    case: str, src: str, out: Path, server: CountingServer | None = None, size: int = 0
) -> None:
    import dask.array as da
    import napari
    import pint

    import intake_mrc

    print(f"{case}: {src}", flush=True)
    f = intake_mrc.open_mrc(src)
    reader_meta = _reader_meta(src)
    since = len(server.sent) if server else 0
    viewer = napari.Viewer(show=False)
    try:
        viewer.window._qt_window.resize(*WINDOW)
        start = time.perf_counter()
        layers = viewer.open(src, plugin="intake-mrc")
        show_scale_bar(viewer)
        viewer.reset_view()
        _process_events()
        png_path = out / f"{case}.png"
        png = viewer.screenshot(str(png_path), canvas_only=False, flash=False)
        seconds = time.perf_counter() - start
        layer = layers[0]
        axes = f.axes
        check(case, "dask", isinstance(layer.data, da.Array), type(layer.data).__name__)
        check(
            case,
            "scale",
            np.allclose(layer.scale, [a["scale"] for a in axes]),
            f"{list(np.round(layer.scale, 4))} (file {[a['scale'] for a in axes]})",
        )
        check(
            case,
            "translate",
            np.allclose(layer.translate, [a["offset"] for a in axes]),
            f"{list(np.round(layer.translate, 4))}",
        )
        units = [str(u) for u in layer.units]
        registry = pint.get_application_registry()
        want = [str(registry.Unit(a["units"] or "pixel")) for a in axes]
        check(case, "units", units == want, f"{units}")
        check(
            case,
            "axis labels",
            list(layer.axis_labels) == list(f.dimension_names()),
            f"{list(layer.axis_labels)}; dims {list(viewer.dims.axis_labels)}",
        )
        limits = [float(v) for v in layer.contrast_limits]
        check(
            case,
            "contrast limits from the reader",
            limits[1] > limits[0] and "contrast_limits" in reader_meta,
            f"{[round(v, 4) for v in limits]} (header DMIN/DMAX "
            f"{f.header.get('dmin')}/{f.header.get('dmax')})",
        )
        ok, detail = _not_blank(png)
        check(case, "screenshot", ok, f"{png_path} {png.shape[1]}x{png.shape[0]}, {detail}")
        if server is not None:
            served = server.bytes_for(Path(f.name).name, since)
            chunk = max(layer.data.blocks[(0,) * layer.data.ndim].nbytes, 1)
            detail = (
                f"{served} of {size} bytes ({100 * served / size:.1f} %), "
                f"{len(server.sent) - since} requests, {seconds:.1f} s; layer chunk {chunk} B"
            )
            if size > 8 * chunk:
                # napari reads whole chunks (no task fusion while it slices): the header and
                # a few chunks are expected, not the file
                check(case, "HTTP bytes served (open + draw)", served <= 4 * chunk, detail)
            else:
                print(f"  (the file is at most 8 chunks: bytes not checked) {detail}")
            if VERBOSE:
                for method, path, rng, n in server.sent[since:]:
                    print(f"    {method} {path} Range {rng}: {n} bytes")
        else:
            print(f"  time to open and draw: {seconds:.1f} s")
    finally:
        viewer.close()


def _reader_meta(src: str) -> dict[str, Any]:
    from intake_mrc.napari import get_reader

    reader = get_reader(src)
    return reader(src)[0][1] if reader else {}


# --- command line --------------------------------------------------------------------------

STARTUP = '''\
"""Startup script for napari_check: after the event loop ran, save a window grab and the
layers' scale/units/labels as JSON, then close napari."""
import json, os, time
import napari
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication


TRIES = [0]


def _done():
    viewer = napari.current_viewer()
    shown = viewer is not None and viewer.window._qt_window.isVisible()
    if not (shown and viewer.layers) and TRIES[0] < 120:
        # napari has not finished opening the file and shown its window yet: wait
        TRIES[0] += 1
        QTimer.singleShot(500, _done)
        return
    viewer.window._qt_window.resize(1100, 700)
    overlays = getattr(getattr(viewer, "canvas", None), "overlays", None)
    bar = overlays.scale_bar if overlays is not None else viewer.scale_bar
    bar.visible = True
    bar.position = "bottom_left"
    viewer.reset_view()
    for _ in range(50):  # let the canvas redraw at its new size
        QApplication.processEvents()
        time.sleep(0.02)
    viewer.screenshot(os.environ["NAPARI_CHECK_PNG"], canvas_only=False, flash=False)
    info = [
        {
            "name": layer.name,
            "type": type(layer.data).__module__ + "." + type(layer.data).__name__,
            "shape": list(layer.data.shape),
            "scale": [float(s) for s in layer.scale],
            "units": [str(u) for u in layer.units],
            "axis_labels": list(layer.axis_labels),
            "contrast_limits": [float(c) for c in layer.contrast_limits],
        }
        for layer in viewer.layers
    ]
    with open(os.environ["NAPARI_CHECK_JSON"], "w") as out:
        json.dump(info, out)
    viewer.close()
    QApplication.instance().quit()


QTimer.singleShot(int(os.environ.get("NAPARI_CHECK_DELAY_MS", "4000")), _done)
'''


def _run_napari(args: list[str], work: Path, tag: str, platform: str, png: Path) -> Any:
    """``napari ARGS`` with our startup script; (process, seconds, layers or None)."""
    startup = work / "startup.py"
    startup.write_text(STARTUP)
    config = work / f"{tag}-settings.yaml"
    config.write_text(f"application:\n  startup_script: {json.dumps(str(startup))}\n")
    info = work / f"{tag}.json"
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": platform,
        "NAPARI_CONFIG": str(config),
        "NAPARI_CHECK_PNG": str(png),
        "NAPARI_CHECK_JSON": str(info),
    }
    napari_exe = Path(sys.executable).with_name("napari")
    start = time.perf_counter()
    proc = subprocess.run(
        [str(napari_exe), *args], env=env, capture_output=True, text=True, timeout=180
    )
    layers = json.loads(info.read_text()) if info.exists() else None
    return proc, time.perf_counter() - start, layers


def check_cli(case: str, args: list[str], out: Path, work: Path, expect_shape: list[int]) -> None:
    """The napari command offscreen (what the brief asks; layers checked), then under Xvfb
    as a real X window (platform xcb) for the picture: offscreen, the window napari shows
    grabs with a black canvas (napari 0.9.2, PyQt5; a viewer never shown grabs fine)."""
    from PIL import Image

    print(f"{case}: napari {' '.join(args)}", flush=True)
    png = out / f"{case}-offscreen.png"
    proc, seconds, layers = _run_napari(args, work, case, "offscreen", png)
    if layers is None:
        check(case, "napari command", False, f"exit {proc.returncode}: {proc.stderr[-2000:]}")
        return
    check(case, "napari command", proc.returncode == 0, f"exit {proc.returncode}, {seconds:.1f} s")
    check(
        case,
        "layer",
        len(layers) == 1 and layers[0]["shape"] == expect_shape and "dask" in layers[0]["type"],
        json.dumps(layers),
    )
    png = out / f"{case}.png"
    proc, seconds, layers = _run_napari(args, work, case + "-xcb", "xcb", png)
    if layers is None and "platform plugin" in proc.stderr:
        print(f"  (no picture: Qt's xcb platform does not load here: {proc.stderr[-300:]})")
        return
    if layers is None:
        check(case, "napari command (xcb)", False, f"exit {proc.returncode}: {proc.stderr[-2000:]}")
        return
    ok, detail = _not_blank(np.asarray(Image.open(png)))
    check(case, "screenshot (xcb window under Xvfb)", ok, f"{png}, {detail}, {seconds:.1f} s")


# --- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="napari-check", help="folder for the PNG screenshots")
    parser.add_argument("--keep-data", action="store_true", help="keep the written files")
    parser.add_argument("--no-cli", action="store_true", help="skip the `napari FILE` runs")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    ensure_display(sys.argv[1:] if argv is None else argv)
    work = Path(tempfile.mkdtemp(prefix="napari-check-"))
    server = None
    try:
        import napari

        print(
            f"napari {napari.__version__}, Qt platform {os.environ['QT_QPA_PLATFORM']}, "
            f"DISPLAY {os.environ.get('DISPLAY')}"
        )
        served = work / "http"
        (served / "maps").mkdir(parents=True)
        (served / "de").mkdir()
        shutil.copy(EMD, served / "maps" / EMD.name)
        movie = write_de_movie(served / "de")
        volume = write_volume(served / "maps")
        local = work / "local"
        local.mkdir()
        shutil.copy(RSCIIO_MOVIE, local / RSCIIO_MOVIE.name)
        shutil.copy(RSCIIO_INFO, local / RSCIIO_INFO.name)
        server = CountingServer(served).start()

        check_viewer("local-emd", str(EMD), out)
        check_viewer("local-de-rsciio", str(local / RSCIIO_MOVIE.name), out)
        check_viewer("local-de-written", str(movie), out)
        for case, path in (
            ("http-emd", served / "maps" / EMD.name),
            ("http-de-written", movie),
            ("http-volume", volume),
        ):
            check_viewer(case, server.url_of(path), out, server, path.stat().st_size)
        if not args.no_cli:
            check_cli(
                "cli-local-de",
                [str(movie), "--plugin", "intake-mrc"],
                out,
                work,
                [48, 64, 64, 64],
            )
            check_cli(
                "cli-http-emd", [server.url_of(served / "maps" / EMD.name)], out, work, [20, 20, 20]
            )
    finally:
        if server is not None:
            server.stop()
        if args.keep_data:
            print(f"data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    failed = [r for r in RESULTS if not r[2]]
    print(f"{len(RESULTS) - len(failed)} passed, {len(failed)} failed; screenshots in {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
