"""Makes ``import locust`` (and ``from locust.X import Y``) give horde's modules.

Installed by the ``horde`` command before it imports locustfiles, so files written for Locust run
unchanged whether or not Locust itself is installed. ``locust.X`` is the very module object
``horde.X``: a class defined once is the same class under both names.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType
from typing import Any


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: Any) -> ModuleType:
        module = importlib.import_module(self.target)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system stamped the alias's spec on horde's module; give it its own back.
        module.__spec__ = self._spec


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "locust" and not fullname.startswith("locust."):
            return None
        real = "horde" + fullname[len("locust") :]
        if importlib.util.find_spec(real) is None:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: horde provides Locust's API, but not {fullname}", name=fullname
            )
        return importlib.util.spec_from_loader(fullname, _AliasLoader(real))


_finder = _AliasFinder()


def install() -> None:
    """Routes ``locust`` imports to horde (idempotent). Any real Locust already imported is
    replaced, so a locustfile cannot mix the two."""
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
    for name in [n for n in sys.modules if n == "locust" or n.startswith("locust.")]:
        del sys.modules[name]


def uninstall() -> None:
    """Undoes ``install`` (for tests and library use)."""
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    for name in [n for n in sys.modules if n == "locust" or n.startswith("locust.")]:
        del sys.modules[name]
