"""Where a registration reads a local source from, and how long a file name may be there."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InvalidInput

_DEFAULT_NAME_MAX = 255


def local_source(source: str, base_dir: Path | None) -> str:
    """`source` as the folder to copy: relative paths joined to `base_dir`, which they may not
    leave through "..".

    Absolute and "~" paths stay as they are: they say where they are, and anyone who may call
    the API may name any folder this server can read that way. A relative path means "in
    base_dir", so one that climbs out of it is refused rather than read from elsewhere. Only the
    path's text is checked: a link inside base_dir to a folder outside is followed, as the
    file browser follows it.
    """
    if base_dir is None or source.startswith("~") or os.path.isabs(source):
        return source
    base = os.path.normpath(os.path.abspath(base_dir))
    joined = os.path.normpath(os.path.join(base, source))
    if os.path.commonpath([base, joined]) != base:
        raise InvalidInput(
            f"source: {source!r} leads out of {base!r}, where relative paths are read from; "
            "name a folder inside it, or give an absolute path"
        )
    return joined


def name_max(folder: Path) -> int:
    """The longest file name (bytes) the file system of `folder`, or its nearest parent, takes."""
    for candidate in (folder, *folder.parents):
        try:
            return int(os.pathconf(candidate, "PC_NAME_MAX"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            break
    return _DEFAULT_NAME_MAX
