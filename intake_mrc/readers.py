"""intake 2 front end: the MRC datatype and readers producing dask, numpy, xarray or the
opened ``MRCFile``. Registered through the ``intake.imports`` entry point, so importing
intake makes them known; they hold no format knowledge and only call ``open_mrc``.
"""

from __future__ import annotations

from typing import Any

from intake.readers import datatypes
from intake.readers.readers import BaseReader

from .api import open_mrc
from .mrc import MRCFile


class MRC(datatypes.FileData):
    """An MRC2014 / CCP4 map file (also gzip or bzip2 compressed)."""

    filepattern = r"\.(mrc|mrcs|map|ccp4|rec|st|ali|preali)(\.gz|\.bz2)?$"
    magic = {(208, b"MAP ")}
    structure = {"array"}
    mimetypes = "application/(x-)?mrc"


class _MRCReader(BaseReader):
    """The readers' shared methods. Not registered for MRC (``implements`` is empty here):
    intake lists only the public readers below among ``possible_readers``."""

    implements: set[type] = set()
    imports = {"intake_mrc", "dask"}

    def _open(self, data: MRC | None = None, **kwargs: Any) -> MRCFile:
        """Open the entry's file. ``data`` comes however intake or the user gave it: as the
        first of ``args`` (catalog entries, ``Reader(data)``, ``Reader(url)``), as ``data=``
        (``to_reader``, ``auto_pipeline``, ``Reader(data=d)``) or as ``url=``."""
        args = kwargs.pop("args", ())
        if data is None:
            data = args[0] if args else None
        if data is None and "url" in kwargs:  # Reader(url=...): intake only wraps args
            data = MRC(url=kwargs.pop("url"))
        if not isinstance(data, MRC):
            raise TypeError(
                f"{type(self).__name__} needs an intake_mrc.readers.MRC data instance "
                f"(MRC(url=...)), got {type(data).__name__}"
            )
        # The data block's storage options also serve the entry's other files (info file,
        # virtual images); a reader kwarg of that name overrides them. glob_catalog's
        # options and URLs arrive as HeldOptions: the full ones are used only here.
        from .credentials import resolve  # here: intake imports this module at its own import

        options = kwargs.pop("storage_options", None) or data.storage_options
        names = ("metadata_file", "virtual_images", "external_images", "scan_file")
        options, (url, *others) = resolve(options, data.url, *(kwargs.get(n) for n in names))
        for name, value in zip(names, others, strict=True):
            if name in kwargs:
                kwargs[name] = value
        return open_mrc(url, storage_options=options, **kwargs)

    def _read(self, data: MRC | None = None, **kwargs: Any) -> Any:
        return self._output(self._open(data, **kwargs))

    def _output(self, f: MRCFile) -> Any:
        raise NotImplementedError

    def _arguments(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        kw = self.kwargs.copy()
        kw.update(kwargs)
        return kw

    def to_dask(self, **kwargs: Any) -> Any:
        """The lazy dask array (whatever this reader's output type)."""
        return self.to_mrcfile(**kwargs).to_dask()

    def to_mrcfile(self, **kwargs: Any) -> MRCFile:
        """The opened ``MRCFile`` behind this entry (header, DE metadata, related images)."""
        return self._open(**self._arguments(kwargs))

    def discover(self, **kwargs: Any) -> Any:
        """Header only: the lazy dask array, nothing read."""
        return self.to_dask(**kwargs)


class MRCDaskReader(_MRCReader):
    """MRC data as a chunked dask array (each chunk whole frames, one task per range set)."""

    implements = {MRC}
    output_instance = "dask.array:Array"

    def _output(self, f: MRCFile) -> Any:
        return f.to_dask()


class MRCNumpyReader(_MRCReader):
    """MRC data read whole into a numpy array."""

    implements = {MRC}
    output_instance = "numpy:ndarray"
    imports = {"intake_mrc", "numpy"}

    def _output(self, f: MRCFile) -> Any:
        return f.read()


class MRCFileReader(_MRCReader):
    """The opened ``MRCFile``: header, extended header, DE metadata, related images."""

    implements = {MRC}
    output_instance = "intake_mrc.mrc:MRCFile"

    def _output(self, f: MRCFile) -> Any:
        return f


class MRCXarrayReader(_MRCReader):
    """MRC data as a lazy xarray DataArray with physical coordinates from the axes."""

    implements = {MRC}
    output_instance = "xarray:DataArray"
    imports = {"intake_mrc", "xarray"}

    def _output(self, f: MRCFile) -> Any:
        return to_xarray(f)


def to_xarray(f: MRCFile) -> Any:
    """``f.to_xarray()``: the DataArray the xarray backend and ``MRCFile`` build."""
    return f.to_xarray()
