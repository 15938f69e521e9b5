"""Storage: where bytes live, below the format. A location is a local path or a URL (any
fsspec URL: ``gs://``, ``s3://``, ``memory://``...); every read, listing and write of the
package goes through this package.

    fs        the seam: open, list, stat, put whole, delete over local paths and URLs
    atomic    local atomic writes (temporary sibling, then rename) and their temp names
    streams   front-to-back reading of a whole object in bounded memory
    location  ``Location``: one type for a local path or a URL, and its opener (streams,
              ranged pieces, random reads by offset)
"""

from __future__ import annotations

from ..errors import StorageError
from .fs import (
    REMOTE_BLOCK,
    basename,
    delete,
    delete_tree,
    dirname,
    exists,
    extra_for,
    filesystem,
    get_file,
    glob,
    is_dir,
    is_file,
    is_url,
    join,
    list_files,
    list_folder,
    local,
    make_dirs,
    open_read,
    put_file,
    read_bytes,
    read_many,
    read_text,
    redact,
    scheme,
    size,
    storage_timeout,
    time_limit,
    walk_files,
    write_atomic,
    writing,
)
from .location import INDEX_SUFFIX, Location, RandomReader, read_pieces
from .streams import open_stream

__all__ = [
    "INDEX_SUFFIX",
    "REMOTE_BLOCK",
    "Location",
    "RandomReader",
    "StorageError",
    "basename",
    "delete",
    "delete_tree",
    "dirname",
    "exists",
    "extra_for",
    "filesystem",
    "get_file",
    "glob",
    "is_dir",
    "is_file",
    "is_url",
    "join",
    "list_files",
    "list_folder",
    "local",
    "make_dirs",
    "open_read",
    "open_stream",
    "put_file",
    "read_bytes",
    "read_many",
    "read_pieces",
    "read_text",
    "redact",
    "scheme",
    "size",
    "storage_timeout",
    "time_limit",
    "walk_files",
    "write_atomic",
    "writing",
]
