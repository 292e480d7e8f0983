"""Placeholders for the plotting libraries that gymnax imports at module level and purerl never calls.

gymnax's environments import `seaborn` and `matplotlib.pyplot` when gymnax is imported, for their
renderers. Those two pull in scipy.stats, pandas and matplotlib's figure machinery: about 2 s of every
`purerl` command's start-up (and of every worker process's) on a 2-core CPU, for nothing a run uses.

`install()` puts a placeholder module in `sys.modules` for each one not imported yet; the first attribute
read on a placeholder imports the real module and answers from it, so code holding a placeholder (gymnax's
renderers) works unchanged. `release()`, called once gymnax is imported, takes the unused placeholders back
out of `sys.modules`, so that a user's own `import seaborn` afterwards gets the real module.

No jax here: `purerl/__init__.py` installs them before anything else is imported.
"""

from __future__ import annotations

import importlib
import sys
import types

DEFERRED = ("seaborn", "matplotlib.pyplot")


class _Placeholder(types.ModuleType):
    """Stands for module `__name__` until an attribute is read, then imports it and delegates.

    `__spec__` is None (set by ModuleType), so the import system hands the placeholder out for `import name`
    without reading any other attribute."""

    def __getattr__(self, attr: str):  # only called for attributes the placeholder itself lacks
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


def install() -> None:
    for name in DEFERRED:
        if name not in sys.modules:
            sys.modules[name] = _Placeholder(name)


def release() -> None:
    for name in DEFERRED:
        if isinstance(sys.modules.get(name), _Placeholder):
            del sys.modules[name]
