"""Downloads for users with internet: fetched once into a cache laid out like the local data.

A downloaded dataset lands in ``<cache>/<folder>/`` with exactly the file names of the local copy
in ``SCALING_DATA_DIR``, so one reader serves both. Files are written to a temporary name and
renamed, so an interrupted download never leaves a half-written file that looks complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from scaling.data.errors import SourceNotFoundError

_TRUE = {"1", "true", "yes", "on"}


def cache_root() -> Path:
    """``SCALING_CACHE_DIR``, else ``~/.cache/hybrid-scaling``."""
    return Path(os.environ.get("SCALING_CACHE_DIR") or Path.home() / ".cache" / "hybrid-scaling")


def offline() -> bool:
    """True when the user said not to use the network (ours or Hugging Face's switches)."""
    return any(os.environ.get(v, "").lower() in _TRUE
               for v in ("SCALING_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def fetch_url(url: str, dest: Path, *, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` unless it is already there; atomic."""
    if dest.is_file():
        return dest
    if offline():
        raise SourceNotFoundError(f"{dest} is not cached and downloads are off (SCALING_OFFLINE/HF_HUB_OFFLINE)",
                                  file=url, hint=f"put the file at {dest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out)
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        Path(tmp).unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise SourceNotFoundError(f"download failed ({reason})", file=url,
                                  hint=f"without internet, put the file at {dest} or set SCALING_DATA_DIR") from None
    return dest


def fetch_hub_dataset(name: str, config: str | None = None, split: str | None = None):
    """A Hugging Face hub dataset through ``datasets`` (its own cache keeps it after the first call)."""
    import datasets

    try:
        return datasets.load_dataset(name, config, split=split, cache_dir=str(cache_root() / "hf-datasets"))
    except Exception as exc:  # datasets raises many types for network, auth and missing configs
        raise SourceNotFoundError(f"could not load hub dataset ({type(exc).__name__}: {exc})",
                                  file=f"hf:{name}" + (f"/{config}" if config else ""),
                                  hint="offline, use the local copy through SCALING_DATA_DIR") from None
