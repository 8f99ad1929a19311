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
    implements = {MRC}
    imports = {"intake_mrc", "dask"}

    def _open(self, data: MRC, **kwargs: Any) -> MRCFile:
        # The data block's storage options also serve the entry's other files (info file,
        # virtual images); a reader kwarg of that name overrides them.
        options = kwargs.pop("storage_options", None) or data.storage_options
        return open_mrc(data.url, storage_options=options, **kwargs)

    def to_dask(self, **kwargs: Any) -> Any:
        """The lazy dask array (whatever this reader's output type)."""
        return self.to_mrcfile(**kwargs).to_dask()

    def to_mrcfile(self, **kwargs: Any) -> MRCFile:
        """The opened ``MRCFile`` behind this entry (header, DE metadata, related images)."""
        kw = self.kwargs.copy()
        kw.update(kwargs)
        (data,) = kw.pop("args", ())
        return self._open(data, **kw)

    def discover(self, **kwargs: Any) -> Any:
        """Header only: the lazy dask array, nothing read."""
        return self.to_dask(**kwargs)


class MRCDaskReader(_MRCReader):
    """MRC data as a chunked dask array (each chunk whole frames, one task per range set)."""

    output_instance = "dask.array:Array"

    def _read(self, data: MRC, **kwargs: Any) -> Any:
        return self._open(data, **kwargs).to_dask()


class MRCNumpyReader(_MRCReader):
    """MRC data read whole into a numpy array."""

    output_instance = "numpy:ndarray"
    imports = {"intake_mrc", "numpy"}

    def _read(self, data: MRC, **kwargs: Any) -> Any:
        return self._open(data, **kwargs).read()


class MRCFileReader(_MRCReader):
    """The opened ``MRCFile``: header, extended header, DE metadata, related images."""

    output_instance = "intake_mrc.mrc:MRCFile"

    def _read(self, data: MRC, **kwargs: Any) -> Any:
        return self._open(data, **kwargs)


class MRCXarrayReader(_MRCReader):
    """MRC data as a lazy xarray DataArray with physical coordinates from the axes."""

    output_instance = "xarray:DataArray"
    imports = {"intake_mrc", "xarray"}

    def _read(self, data: MRC, **kwargs: Any) -> Any:
        return to_xarray(self._open(data, **kwargs))


def to_xarray(f: MRCFile) -> Any:
    """``f.to_xarray()``: the DataArray the xarray backend and ``MRCFile`` build."""
    return f.to_xarray()
