"""Stack traces without the server's paths.

A failed run's stack is shown to everyone who may see the run, view-only users included, so
it must not tell where the product is installed: a file of the product is shown relative to
the installation root (``app/domain/execution.py``), one of an installed package relative to
its site-packages (``site-packages/sqlalchemy/engine/base.py``), one of Python itself relative
to its library (``python3.11/asyncio/tasks.py``), and any other file by its name alone.
"""

from __future__ import annotations

import os
import re
import site
import sys
import sysconfig
from typing import overload

from app.settings import PROJECT_ROOT

_FRAME = re.compile(r'^(\s*File ")([^"\n]+)(")', re.MULTILINE)
_PYTHON = f"python{sys.version_info.major}.{sys.version_info.minor}"


def _site_dirs() -> list[str]:
    found = {p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages")}
    found.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    found.add(site.getusersitepackages())
    return [os.path.normpath(p) for p in found if p]


#: (prefix, how it is shown), longest prefix first: a virtualenv inside the installation root
#: shows its packages as site-packages, not as a path under the root.
def _prefixes() -> list[tuple[str, str]]:
    named = [(d, "site-packages") for d in _site_dirs()]
    named += [(sysconfig.get_paths()[key], _PYTHON) for key in ("stdlib", "platstdlib")]
    named.append((str(PROJECT_ROOT), ""))
    # Both spellings of each: a frame names its file as imported, which may be through a symlink.
    found = {(os.path.normpath(path), shown) for path, shown in named}
    found |= {(os.path.realpath(path), shown) for path, shown in found}
    return sorted(found, key=lambda pair: len(pair[0]), reverse=True)


_PREFIXES = _prefixes()


def shown_path(filename: str) -> str:
    """``filename`` as a stack may show it (see the module docs)."""
    if not os.path.isabs(filename):
        return filename  # <string>, <frozen importlib._bootstrap>, already relative
    path = os.path.normpath(filename)
    for prefix, shown in _PREFIXES:
        if path.startswith(prefix + os.sep):
            rest = path[len(prefix) + 1 :].replace(os.sep, "/")
            return f"{shown}/{rest}" if shown else rest
    return os.path.basename(path)


@overload
def shown_stack(stack: str) -> str: ...
@overload
def shown_stack(stack: None) -> None: ...
@overload
def shown_stack(stack: str | None) -> str | None: ...
def shown_stack(stack: str | None) -> str | None:
    """A formatted traceback with every ``File "..."`` rewritten by ``shown_path``."""
    if not stack:
        return stack
    return _FRAME.sub(lambda m: f"{m.group(1)}{shown_path(m.group(2))}{m.group(3)}", stack)
