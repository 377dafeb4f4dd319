"""What every result records about where it came from: library versions, git revision, host."""

from __future__ import annotations

import importlib.metadata as md
import platform
import socket
import subprocess
from pathlib import Path

PACKAGES = ("torch", "transformers", "numpy", "pyarrow", "faiss-cpu", "faiss-gpu-cu12", "ray", "langcodes")


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def git_revision() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def provenance() -> dict:
    """The three records every result file carries: library versions, git revision, host."""
    return {"versions": library_versions(), "git_revision": git_revision(), "host": host()}


def host() -> dict[str, str | None]:
    gpu = None
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except (ImportError, RuntimeError):
        pass
    return {"name": socket.gethostname(), "platform": platform.platform(), "gpu": gpu}
