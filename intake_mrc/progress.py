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

import sys
from collections.abc import Iterable
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


__all__ = ["progress_bar", "stderr_is_terminal"]
