"""A real napari viewer (Qt's offscreen platform, GL from an X display) opens MRC files through
the intake-mrc reader: lazy dask layers with physical scale, units and labels, contrast limits
that cost no extra reads, an HTTP file read by the chunks napari shows, and a window grab
that is not blank.

Runs only where napari and a Qt binding import and an X display exists (or Xvfb, started
here). CI installs neither napari nor Qt, so CI skips this module; tools/napari_check.py is
the fuller check (DE movies, the napari command), run by hand in a venv of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import numpy as np
import pytest
from conftest import MRCFILE_TESTS, RSCIIO
from mrcwriter import write_mrc

napari = pytest.importorskip("napari")
pytest.importorskip("qtpy.QtWidgets")  # no Qt binding: qtpy raises an ImportError

from intake_mrc.napari import CHUNK_BYTES  # noqa: E402

DE_MOVIE = RSCIIO / "20241021_00405_movie.mrc"


@pytest.fixture(scope="module")
def display():
    """An X display for vispy's GL context: the session's, else an Xvfb of our own."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("no X display and no Xvfb: napari's canvas needs OpenGL")
    # -displayfd: Xvfb picks a free display and writes its number once it accepts clients.
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        [xvfb, "-displayfd", str(write_end), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # Stopped after this process ends, not before: Qt keeps its X connection until exit, and
    # a server gone under it ends the process through Qt's X I/O error handler (exit 1).
    subprocess.Popen(
        [
            "sh",
            "-c",
            f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; kill {server.pid}",
        ],
        start_new_session=True,
    )
    os.close(write_end)
    with os.fdopen(read_end) as ready:
        number = ready.readline().strip()
    if not number:
        pytest.skip("Xvfb did not start")
    os.environ["DISPLAY"] = f":{number}"
    yield os.environ["DISPLAY"]


@pytest.fixture
def viewer(display):
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=False)
    viewer.window._qt_window.resize(1100, 700)
    yield viewer
    viewer.close()
    QApplication.processEvents()


def _draw(viewer) -> np.ndarray:
    """Process Qt events, then grab the window (canvas_only grabs came out black offscreen)."""
    from qtpy.QtWidgets import QApplication

    viewer.reset_view()
    for _ in range(25):
        QApplication.processEvents()
        time.sleep(0.02)
    png = viewer.screenshot(canvas_only=False, flash=False)
    return png[35 : png.shape[0] - 85, 355 : png.shape[1] - 5, :3]  # the canvas


def test_local_map_opens_lazy_with_physical_scale(viewer):
    import dask.array as da

    import intake_mrc

    path = MRCFILE_TESTS / "EMD-3197.map"
    (layer,) = viewer.open(str(path), plugin="intake-mrc")
    f = intake_mrc.open_mrc(path)
    assert isinstance(layer.data, da.Array)
    assert np.allclose(layer.scale, [1.14, 1.14, 1.14])
    assert [str(u) for u in layer.units] == ["nanometer"] * 3
    assert tuple(viewer.dims.axis_labels) == ("z", "y", "x")
    assert list(layer.contrast_limits) == pytest.approx([f.header["dmin"], f.header["dmax"]])
    canvas = _draw(viewer)
    assert canvas.std() > 10 and len(np.unique(canvas[..., 0])) > 50  # a map, not a blank


def test_de_movie_units_labels_and_sampled_contrast(viewer):
    (layer,) = viewer.open(str(DE_MOVIE), plugin="intake-mrc")
    assert tuple(viewer.dims.axis_labels) == ("y", "x", "ky", "kx")
    assert [str(u) for u in layer.units] == ["nanometer"] * 2 + ["milliradian"] * 2
    # the header says DMIN 2 > DMAX 1: the reader sampled frames 0, (2, 4) and 31
    assert list(layer.contrast_limits) == [0.0, 31.0]
    assert _draw(viewer).std() > 1


def test_http_file_is_read_by_the_chunks_napari_shows(viewer, tmp_path, http_upload, http_server):
    frames = 512  # 16 KiB frames: 8 MiB
    values = np.random.default_rng(5).normal(size=(frames, 64, 64)).astype(np.float32)
    path = write_mrc(tmp_path / "remote.mrc", values, header={"dmin": 2.0, "dmax": 1.0})
    (url,) = http_upload(path, prefix="napari-viewer")
    http_server.requests.clear()
    (layer,) = viewer.open(url, plugin="intake-mrc")
    canvas = _draw(viewer)
    asked = http_server.bytes_requested()
    assert asked <= 66560 + 3 * 16384 + 2 * CHUNK_BYTES < path.stat().st_size / 2
    assert canvas.std() > 1
    shown = int(round(viewer.dims.point[0] / layer.scale[0]))
    np.testing.assert_array_equal(np.asarray(layer.data[shown]), values[shown])
