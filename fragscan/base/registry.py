"""One registry type for models, datasets, filters and attacks: register, get, list with globs."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .errors import ConfigError, UnknownNameError

T = TypeVar("T")

# Who is registering right now: "builtin", or the plugin being loaded (set by fragscan.base.plugins).
_registering_source: ContextVar[str] = ContextVar("registering_source", default="builtin")
# Every registration made while a source is active, as "kind:name", so a plugin can list what it added.
_registered_by: ContextVar[list[str] | None] = ContextVar("registered_by", default=None)


@contextmanager
def registering_as(source: str) -> Iterator[list[str]]:
    """Attribute registrations inside the block to ``source``; yields the list of what was registered."""
    added: list[str] = []
    source_token, added_token = _registering_source.set(source), _registered_by.set(added)
    try:
        yield added
    finally:
        _registering_source.reset(source_token)
        _registered_by.reset(added_token)


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = "builtin"


class Registry(Generic[T]):
    """A named table of factories (or classes) with their metadata."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, obj: T, *, source: str | None = None, replace: bool = False, **meta: Any) -> T:
        """Record ``obj`` under ``name``; ``source`` defaults to the plugin being loaded, else "builtin"."""
        loading = _registering_source.get()
        if source is None and (getattr(obj, "__module__", None) or "").partition(".")[0] == __name__.partition(".")[0]:
            # defined in fragscan itself: a built-in, even when a plugin's import is what first loaded its module
            source = "builtin"
        source = source or loading
        if name in self._entries and not replace:
            raise ConfigError(f"{self.kind} {name!r} is already registered by {self._entries[name].source}")
        self._entries[name] = Entry(name, obj, dict(meta), source)
        added = _registered_by.get()
        # What a plugin's first import of fragscan.sweep.attacks or fragscan.models registers is not the plugin's.
        if added is not None and source == loading:
            added.append(f"{self.kind}:{name}")
        return obj

    def decorator(self, name: str | None = None, **meta: Any) -> Callable[[T], T]:
        def wrap(obj: T) -> T:
            return self.register(name or getattr(obj, "name", None) or obj.__name__, obj, **meta)

        return wrap

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.list()) from None

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def list(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self.list())
