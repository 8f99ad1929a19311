"""Progress bars for long command-line work (listing, grouping, header indexing, references,
previews): drawn on stderr only when stderr is a terminal, nothing otherwise (pipes, logs,
notebooks capturing output, tests). The library never draws on its own: functions take a
``progress`` flag that only the command line sets. tqdm is imported when a bar is made.

    from intake_mrc.progress import progress_bar
    with progress_bar(total=len(urls), desc="headers", unit="file", enabled=progress) as bar:
        for url in urls:
            ...
            bar.update(1)

``total=None`` gives a counter ("1234 objects seen") for work of unknown size.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any


def stderr_is_terminal(stream: IO[str] | None = None) -> bool:
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    enabled: bool = True,
    leave: bool = False,
) -> Any:
    """A tqdm bar on stderr, disabled (a silent pass-through) unless ``enabled`` and stderr
    is a terminal. Use as a context manager or iterate over it; ``update(n)`` counts."""
    from tqdm import tqdm

    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=not (enabled and stderr_is_terminal()),
        mininterval=0.2,
        leave=leave,
        dynamic_ncols=True,
    )


@contextlib.contextmanager
def listing_progress(fs: Any, enabled: bool, desc: str = "listing") -> Iterator[Any]:
    """A counter of the objects a listing has seen so far, for the duration of the block.

    For S3 it counts each page of ``ListObjectsV2`` as it arrives, through botocore's event
    system (``after-call``) on the filesystem's own client: no request is added. Other
    filesystems return their listing at once; the counter then only shows it ran."""
    bar = progress_bar(total=None, desc=desc, unit=" objects", enabled=enabled)
    events, event = None, "after-call.s3.ListObjectsV2"

    def count(parsed: Any = None, **_: Any) -> None:
        if isinstance(parsed, dict):
            bar.update(len(parsed.get("Contents") or ()) + len(parsed.get("CommonPrefixes") or ()))
            # A page holds up to 1,000 objects: drawing each one is cheap, and a listing
            # faster than tqdm's mininterval would otherwise end without showing its count.
            bar.refresh()

    if not bar.disable and "s3" in getattr(fs, "protocol", ()):
        try:
            events = fs.connect().meta.events
            events.register(event, count)
        except Exception:  # noqa: BLE001 - a bar is never worth a failed listing
            events = None
    try:
        yield bar
    finally:
        if events is not None:
            events.unregister(event, count)
        bar.close()


__all__ = ["listing_progress", "progress_bar", "stderr_is_terminal"]
