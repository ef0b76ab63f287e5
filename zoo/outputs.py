"""Output files: one output per input, never an input replaced, and write errors as sentences.

Every command that writes files (``enhance``, ``edit``, ``eval --out/--csv/--json/--grid``, ``niqe-fit -o``,
``swap -o``) goes through here:

- :func:`plan_outputs` maps each input to its own output path. The rule: the input's path relative to the
  argument it came from is kept under the output folder (sub-folders are mirrored) with the output extension.
  When two inputs would get the same output (``a.jpg`` and ``a.bmp``, or ``x.jpg`` in two input folders), each of
  them keeps its own extension in the name (``a.jpg.png``, ``a.bmp.png``); if that still collides (the same
  relative path under two input folders), ``-2``, ``-3``, ... is added in input order. Names are compared without
  their extension and case-insensitively, so sidecars (``NAME.json``, ``NAME.xmp``) are unique too.
- :func:`refuse_overwriting_inputs` refuses, before any work, an output that would replace an input file.
- :func:`writing` turns an ``OSError`` raised while writing (a file where a folder is expected, a read-only
  folder, a full disk) into a :class:`~zoo.errors.DataError` sentence naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from zoo.errors import DataError

SIDECAR_SUFFIXES = (".json", ".xmp")


class OutputError(DataError):
    """An output could not be written (a batch stops: the next file would fail the same way)."""


def _norm(path: Path) -> str:
    """A comparison key for a path: resolved, case-folded (case-insensitive file systems), without symlinks."""
    try:
        resolved = path.expanduser().resolve()
    except (OSError, RuntimeError):
        resolved = path.expanduser().absolute()
    return os.path.normcase(str(resolved)).casefold()


def plan_outputs(
    files: Sequence[tuple[Path, Path]], out_dir: str | os.PathLike[str], suffix: Callable[[Path], str]
) -> list[Path]:
    """One distinct output path per input (see the module docstring for the naming rule).

    Args:
        files: ``(input path, path relative to its input argument)`` pairs (``zoo.inference.collect_images``).
        out_dir: the output folder.
        suffix: the output extension (with the dot) for an input's relative path.

    Returns:
        The output paths, in the order of ``files``; no two share a name without extension.

    Example:
        >>> from pathlib import Path
        >>> files = [(Path(n), Path(n)) for n in ("a.jpg", "a.bmp", "b.jpg")]
        >>> [p.name for p in plan_outputs(files, "out", lambda rel: ".png")]
        ['a.jpg.png', 'a.bmp.png', 'b.png']
    """
    out_dir = Path(out_dir)

    def key(rel: Path) -> str:
        return rel.with_suffix("").as_posix().casefold()

    first = [key(rel) for _, rel in files]
    counts: dict[str, int] = {}
    for k in first:
        counts[k] = counts.get(k, 0) + 1
    taken: set[str] = set()
    out: list[Path] = []
    for (_, rel), k in zip(files, first, strict=True):
        ext = suffix(rel)
        name = rel.with_suffix(ext) if counts[k] == 1 else rel.with_name(rel.name + ext)
        stem, n = name.with_suffix(""), 1
        while key(name) in taken:
            n += 1
            name = stem.with_name(f"{stem.name}-{n}{ext}")
        taken.add(key(name))
        out.append(out_dir / name)
    return out


def refuse_overwriting_inputs(
    outputs: Iterable[Path], inputs: Iterable[Path], *, sidecars: Sequence[str] = (), what: str = "output"
) -> None:
    """Refuse (before any work) when an output, or one of its sidecars, would replace an input file.

    Args:
        outputs: the paths about to be written.
        inputs: the files read (images, references, ...).
        sidecars: extensions of the sidecar files written beside each output (e.g. ``(".json", ".xmp")``).
        what: how the message calls the outputs.

    Raises:
        DataError: naming the input that would be replaced and how to avoid it.
    """
    inputs_by_key = {_norm(Path(p)): Path(p) for p in inputs}
    for out in outputs:
        for candidate in (Path(out), *(Path(out).with_suffix(s) for s in sidecars)):
            hit = inputs_by_key.get(_norm(candidate))
            if hit is not None:
                raise DataError(
                    f"The {what} {candidate} would replace the input {hit}; nothing was written. "
                    "Choose an output folder (or file) that holds none of the inputs."
                )


def describe_os_error(exc: OSError, path: Path) -> str:
    """A sentence for an ``OSError`` raised while writing ``path`` (what went wrong and what to do)."""
    code = exc.errno
    if code == errno.ENOSPC or code == getattr(errno, "EDQUOT", -1):
        return f"Cannot write {path}: the disk is full (or over quota). Free some space or choose another folder."
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        folder = path.parent if not path.is_dir() else path
        return f"Cannot write {path}: no permission to write in {folder} (read-only?). Choose a writable folder."
    if code in (errno.ENOTDIR, errno.EEXIST):
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        if blocker is not None and blocker != path:
            return f"Cannot write {path}: {blocker} is a file, not a folder. Choose another output folder."
        return f"Cannot write {path}: a file is in the way of a folder there. Choose another output path."
    if code == errno.EISDIR:
        return f"Cannot write {path}: it is a folder; give a file name."
    if code == errno.ENAMETOOLONG:
        return f"Cannot write {path}: the name is too long for the file system."
    reason = exc.strerror or type(exc).__name__
    return f"Cannot write {path}: {reason}."


@contextlib.contextmanager
def writing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Context manager: an ``OSError`` inside becomes a :class:`DataError` sentence naming ``path``.

    Example:
        >>> import tempfile
        >>> with writing(Path(tempfile.mkdtemp()) / "x.txt") as p:
        ...     _ = p.write_text("ok")
    """
    path = Path(path)
    try:
        yield path
    except OSError as exc:
        raise OutputError(describe_os_error(exc, path)) from None


def ensure_dir(path: str | os.PathLike[str]) -> Path:
    """Create an output folder (and its parents); a sentence when that is impossible."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"Cannot write into {path}: it is a file, not a folder. Choose another output folder.")
    with writing(path):
        path.mkdir(parents=True, exist_ok=True)
    return path


def ensure_parent(path: str | os.PathLike[str]) -> Path:
    """Create the folder an output file goes to; refuse a path that is itself a folder."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"Cannot write {path}: it is a folder; give a file name.")
    ensure_dir(path.parent)
    return path


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Check, before long work, that a file can be written at ``path`` (a probe file is created and removed).

    Raises:
        OutputError: a read-only folder or a full disk, as a sentence naming ``path``.
    """
    import tempfile

    path = Path(path)
    with writing(path):
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    return path
