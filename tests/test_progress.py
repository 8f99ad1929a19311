"""Progress bars: drawn on a terminal (a pseudo-terminal here) for listing a bucket and
grouping, and nothing at all when stderr is not a terminal; the library never draws."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios

from conftest import RSCIIO

import intake_mrc

FILES = sorted(RSCIIO.glob("20241021_00405_*")) + [RSCIIO / "HAADFscan.mrc"]


def _catalog_command(s3_upload, s3_server, tmp_path, prefix):
    s3_upload(*FILES, prefix=prefix)
    return [
        sys.executable,
        "-m",
        "intake_mrc.cli",
        "catalog",
        f"s3://intake-mrc-test/{prefix}/",
        "-o",
        str(tmp_path / "c.yaml"),
        "--storage-options",
        json.dumps(s3_server["storage_options"]),
    ]


def _run_with_terminal_stderr(cmd) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal; (exit code, stdout, what the terminal got)."""
    main, child = pty.openpty()
    # A terminal of 24 rows and 100 columns (a new pseudo-terminal has 0 columns).
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=child)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    out = proc.stdout.read().decode()
    code = proc.wait(timeout=60)
    os.close(main)
    return code, out, b"".join(chunks).decode(errors="replace")


def test_progress_bars_on_a_terminal(s3_upload, s3_server, tmp_path):
    cmd = _catalog_command(s3_upload, s3_server, tmp_path, "progress-tty")
    code, out, terminal = _run_with_terminal_stderr(cmd)
    assert code == 0 and "wrote 2 entries" in out
    # The listing counts the bucket's objects (7 uploaded), then grouping runs.
    assert "listing" in terminal and "7 objects" in terminal
    assert "grouping" in terminal


def test_no_progress_output_without_a_terminal(s3_upload, s3_server, tmp_path):
    cmd = _catalog_command(s3_upload, s3_server, tmp_path, "progress-pipe")
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "wrote 2 entries" in run.stdout
    # Only the one-line notice that the S3 key and secret were not written; no progress.
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("intake-mrc: warning:"), run.stderr


def test_library_is_quiet(capsys, tmp_path):
    cat = intake_mrc.glob_catalog(str(RSCIIO))
    assert "de_20241021_00405" in list(cat)
    written = tmp_path / "c.yaml"
    intake_mrc.write_catalog(str(RSCIIO), str(written))
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def _preview_command(tmp_path):
    import numpy as np
    from mrcwriter import write_mrc

    path = write_mrc(tmp_path / "movie.mrc", np.ones((40, 16, 16), dtype=np.float32), ispg=0)
    out = tmp_path / "p.png"
    return [sys.executable, "-m", "intake_mrc.cli", "preview", str(path), "-o", str(out)]


def test_preview_shows_the_frames_read_on_a_terminal(tmp_path):
    code, out, terminal = _run_with_terminal_stderr(
        _preview_command(tmp_path) + ["--max-frames", "40"]
    )
    assert code == 0 and "sum of all 40 frames" in out
    assert "reading frames" in terminal and "/40" in terminal, terminal


def test_preview_draws_no_progress_without_a_terminal(tmp_path):
    run = subprocess.run(_preview_command(tmp_path), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "16 of 40 frames" in run.stdout and run.stderr == ""
