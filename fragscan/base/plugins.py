"""Plugins: modules that register models, datasets, filters or attacks through the public decorators.

Three routes, each loaded once per process: the ``fragscan.plugins`` entry-point group of installed
packages, the ``*.py`` files in the project's ``plugins/`` folder (the working directory's), and
files named with ``--plugin FILE.py``. A plugin that fails to import, in any way but the user's
Ctrl-C (``sys.exit`` included), is recorded with its error, not fatal: the scan goes on and the
report says so. Nothing else is ever imported: never a file because a report names it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Literal

from . import errors
from .errors import InputError
from .files import file_sha256
from .registry import registering_as

ENTRY_POINT_GROUP = "fragscan.plugins"
PROJECT_DIR = "plugins"

Route = Literal["entry-point", "project", "file"]


@dataclass(frozen=True)
class Plugin:
    """One plugin load: where it came from, what it registered, and the error if it failed."""

    name: str
    route: Route
    location: str
    registered: tuple[str, ...] = field(default=())
    error: str | None = None
    sha256: str | None = None  # a plugin file's content as loaded (None: an entry point), so a report pins the code

    @property
    def loaded(self) -> bool:
        return self.error is None

    @property
    def file_module(self) -> str | None:
        """The made-up name a plugin file is imported under (``None`` for an entry point): another
        process cannot import it by that name before it has loaded the same file."""
        return None if self.route == "entry-point" else _file_module_name(Path(self.location))

    def describe(self, *, digest: bool = True) -> str:
        """One line for reports: ``name (route: location) registered what`` or ``... failed: why``,
        a file's then ending in ``[sha256 HEX]`` (``digest=False``: not, for an error message)."""
        what = f"registered {', '.join(self.registered) or 'nothing'}"
        if self.error is not None:
            what = f"failed: {self.error}"
        line = f"{self.name} ({self.route}: {self.location}) {what}"
        return line if self.sha256 is None or not digest else f"{line} [sha256 {self.sha256}]"

    @classmethod
    def from_description(cls, line: str) -> Plugin | None:
        """The plugin a :meth:`describe` line names, as a report records it; None for a line it did
        not write. What another process needs to load the same file again (:func:`load_again`)."""
        match = _DESCRIBED.fullmatch(line)
        if match is None:
            return None
        name, route, location = match["name"], match["route"], match["location"]
        if route != "entry-point" and (Path(location).stem != name or not Path(location).is_absolute()):
            return None  # a file plugin is named after its resolved path's stem: this line is not describe()'s
        if match["error"] is not None:
            return cls(name, route, location, error=match["error"], sha256=match["sha256"])
        registered = () if match["registered"] == "nothing" else tuple(match["registered"].split(", "))
        return cls(name, route, location, registered, sha256=match["sha256"])


_DESCRIBED = re.compile(
    r"(?P<name>.+?) \((?P<route>entry-point|project|file): (?P<location>.+?)\) "
    r"(?:registered (?P<registered>.*?)|failed: (?P<error>.*?))(?: \[sha256 (?P<sha256>[0-9a-f]{64})\])?",
    re.DOTALL,
)


_LOADED: dict[tuple[str, str], Plugin] = {}


def _error_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _load(key: tuple[str, str], name: str, route: Route, location: str, importer, sha256: str | None = None) -> Plugin:
    if key in _LOADED:
        return _LOADED[key]
    with registering_as(f"plugin {name}") as added:
        try:
            importer()
            plugin = Plugin(name, route, location, tuple(added), sha256=sha256)
        except KeyboardInterrupt:  # the user's own Ctrl-C stops fragscan, whatever was loading
            raise
        except BaseException as error:  # a broken plugin must not stop fragscan, nor end it with exit 0
            # (sys.exit(0) at import would pass a CI gate with nothing checked): record why instead
            plugin = Plugin(name, route, location, tuple(added), _error_line(error), sha256)
    _LOADED[key] = plugin
    return plugin


def _file_module_name(path: Path) -> str:
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    return f"fragscan_plugin_{path.stem.replace('-', '_')}_{digest}"


def _import_file(path: Path) -> None:
    module_name = _file_module_name(path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise


def _load_file(path: Path, route: Route) -> Plugin:
    path = path.resolve()
    key = ("file", str(path))
    sha256 = None if key in _LOADED or not path.is_file() else file_sha256(path)
    return _load(key, path.stem, route, str(path), lambda: _import_file(path), sha256)


def _load_entry_point(entry_point: metadata.EntryPoint) -> Plugin:
    def importer():
        loaded = entry_point.load()
        if callable(loaded) and not isinstance(loaded, type):
            loaded()  # an entry point may name a setup function rather than a module

    return _load(("entry-point", entry_point.value), entry_point.name, "entry-point", entry_point.value, importer)


def load_plugins(files: Iterable[str | Path] = (), *, project_dir: str | Path | None = None) -> list[Plugin]:
    """Load every plugin the three routes name (each once per process) and return them in load order.

    ``project_dir`` defaults to ``./plugins``. A ``--plugin`` file that does not exist is a usage
    error; a plugin that exists but fails is returned with its error.
    """
    entry_points = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    plugins = [_load_entry_point(ep) for ep in entry_points]
    directory = Path(project_dir) if project_dir is not None else Path.cwd() / PROJECT_DIR
    if directory.is_dir():
        plugins += [
            _load_file(path, "project") for path in sorted(directory.glob("*.py")) if not path.name.startswith("_")
        ]
    for file in files:
        path = Path(file)
        if not path.is_file() or path.suffix != ".py":
            raise InputError(f"--plugin {str(path)!r} is not a Python file; pass the path of a .py plugin")
        plugins.append(_load_file(path, "file"))
    return plugins


def loaded_plugins() -> list[Plugin]:
    """Every plugin loaded so far in this process."""
    return list(_LOADED.values())


def _failed_descriptions() -> list[str]:
    return [plugin.describe(digest=False) for plugin in loaded_plugins() if not plugin.loaded]


errors.failed_plugins = _failed_descriptions  # an unknown name then names them (see errors.failed_plugins)


def load_again(plugins: Iterable[Plugin]) -> list[Plugin]:
    """Load exactly these plugins, by the route and location another process loaded them from, and
    nothing else: no entry point, ``plugins/`` file or ``--plugin`` file that process did not load.
    For a fresh process (a Ray worker) that must hold the same registries as the one it works for."""
    again = []
    for plugin in plugins:
        if plugin.route == "entry-point":
            again.append(_load_entry_point(metadata.EntryPoint(plugin.name, plugin.location, ENTRY_POINT_GROUP)))
        else:
            again.append(_load_file(Path(plugin.location), plugin.route))
    return again
