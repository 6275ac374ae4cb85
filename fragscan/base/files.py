"""Files: atomic writes, output paths proven writable before any long work starts, and a file's sha256
(the identity reports record of the weights and plugin files they ran)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ConfigError, InputError

LOCK_NAME = ".fragscan.lock"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def ensure_writable_dir(directory: Path, option: str = "--out") -> Path:
    """Create ``directory`` if needed and prove it writable before any long work starts."""
    directory = Path(directory)
    blocking = next((p for p in (directory, *directory.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:  # mkdir would only say "File exists"
        raise InputError(
            f"cannot write to {option} {str(directory)!r}: {str(blocking)!r} is a file, not a directory; "
            "name a directory (it is created if missing)"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise InputError(
            f"cannot write to {option} {str(directory)!r}: {error.strerror or error}; choose a writable directory"
        ) from None
    return directory


@contextmanager
def held(directory: Path, option: str = "--out") -> Iterator[None]:
    """Hold ``directory`` for this process while the block runs: a second fragscan writing the same folder
    would delete or overwrite the files the first is resuming from (its resume store, its outputs), so it
    is refused on one line instead. An advisory lock (``flock``) on a file inside, released by the system
    when the process ends however it ends, so a killed run leaves no lock to clear by hand."""
    import fcntl  # POSIX: fragscan runs on Linux and macOS

    path = Path(directory) / LOCK_NAME
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # The holder before us removes the file as it ends: a lock on a file no longer at `path` holds nothing.
            ours = os.path.samestat(os.stat(path), os.fstat(handle.fileno()))
        except (BlockingIOError, FileNotFoundError):
            ours = False
        if not ours:
            raise ConfigError(
                f"{option} {str(directory)!r} is in use by another fragscan run; wait for it to finish, or choose "
                f"another {option}"
            )
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


def ensure_writable_file(path: Path, option: str) -> Path:
    """:func:`ensure_writable_dir` for the folder of the file ``option`` names, and that the name is
    free for a file: checked before any work, so one bad path of several leaves none written."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"cannot write {option} {str(path)!r}: it is a directory; name a file in it")
    ensure_writable_dir(path.parent, option)
    return path


def check_outputs(outputs: dict[str, Path | None], inputs: Iterable[Path | None] = ()) -> None:
    """Before any work: each output file (by its option) can be written, and none is the same file
    as an input or as another output, which writing it would overwrite."""
    taken = {Path(p).resolve(): f"the input {str(p)!r}" for p in inputs if p is not None}
    for option, path in outputs.items():
        if path is None:
            continue
        ensure_writable_file(path, option)
        if Path(path).resolve() in taken:
            raise InputError(
                f"{option} {str(path)!r} is the same file as {taken[Path(path).resolve()]}; name another file"
            )
        taken[Path(path).resolve()] = option


def file_sha256(path: str | Path | None) -> str | None:
    if path is None:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
