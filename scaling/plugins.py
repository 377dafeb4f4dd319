"""Registrations made outside the package (a lab's own strategy or model family, a test's toy)
travel with a trial plan, so Ray workers, which start in fresh processes, make them too.

A plugin is recorded as its module name and file; a worker imports the module by name, or from
its file where the name is not importable there (a script or test module of the driver's).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from typing import Iterable


def plugin_of(obj: object) -> tuple[str, str] | None:
    """(module, file) of the class of ``obj`` (or of ``obj`` if it is a class), None for ours."""
    cls = obj if inspect.isclass(obj) else type(obj)
    module = cls.__module__
    if module == "scaling" or module.startswith("scaling."):
        return None
    return module, inspect.getfile(cls)


def load_plugins(plugins: Iterable[tuple[str, str] | list[str]]) -> None:
    """Import each plugin module (which registers what it defines), by name or else from its file."""
    for module, file in plugins:
        if module in sys.modules:
            continue
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:
            spec = importlib.util.spec_from_file_location(module, file)
            if spec is None or spec.loader is None:
                raise ImportError(f"plugin module {module!r} cannot be imported, nor loaded from {file}") from None
            loaded = importlib.util.module_from_spec(spec)
            sys.modules[module] = loaded
            spec.loader.exec_module(loaded)
