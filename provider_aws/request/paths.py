"""File names inside the mount: one pure rule for the final name and the driver's path contract.

The final name is the object's alias (else its name) with every `/` replaced by the
translation character, or, with translation off, with leading slashes stripped so that
sub-directories are created (the Go provider's behaviour). The result must then satisfy
what the driver's atomic writer accepts (relative, no `..` element, not starting with
`..`, element and path length bounds); we also refuse empty and `.` elements and control
characters, because such names write somewhere other than they say (or nowhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "MAX_ELEMENT_BYTES",
    "MAX_PATH_BYTES",
    "PathConflict",
    "PathError",
    "file_name",
    "find_conflicts",
    "parse_translation",
    "path_problem",
]

# The driver's atomic writer refuses longer paths and longer path elements.
MAX_PATH_BYTES = 4096
MAX_ELEMENT_BYTES = 255

DEFAULT_TRANSLATION = "_"


class PathError(ValueError):
    """A name that cannot become a file in the mount; the message says why."""


def parse_translation(value: str) -> str | None:
    """`pathTranslation` -> the replacement for `/`, or None when translation is off.

    Empty means `_`; `False` in any case turns translation off; otherwise exactly one
    byte (the Go provider counts bytes, so a multi-byte character is refused too).
    """
    if value == "":
        return DEFAULT_TRANSLATION
    if value.lower() == "false":
        return None
    if len(value.encode("utf-8", "surrogatepass")) != 1:
        raise PathError("pathTranslation must be either 'False' or a single character string")
    return value


def file_name(name: str, translation: str | None) -> str:
    """The relative path an object (or jmesPath alias) is written to; raises PathError."""
    result = name.replace("/", translation) if translation is not None else name.lstrip("/")
    problem = path_problem(result)
    if problem is not None:
        raise PathError(problem)
    return result


def path_problem(path: str) -> str | None:  # noqa: PLR0911 - one return per rule reads best
    """Why the driver would refuse (or misplace) a file at `path`; None when it is fine."""
    if path == "":
        return "file name is empty"
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        return f"file name {path!r} is not valid UTF-8"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return f"file name {path!r} contains a NUL or control character"
    if path.startswith("/"):
        return f"file name {path!r} is an absolute path"
    if len(encoded) > MAX_PATH_BYTES:
        return f"file name is longer than {MAX_PATH_BYTES} bytes"
    elements = path.split("/")
    if ".." in elements:
        return f"file name {path!r} contains a '..' element (path can not contain ../)"
    if path.startswith(".."):
        return f"file name {path!r} starts with '..', which the driver reserves"
    for element in elements:
        if element in ("", "."):
            return f"file name {path!r} has an empty or '.' path element"
        if len(element.encode("utf-8")) > MAX_ELEMENT_BYTES:
            return f"file name {path!r} has a path element longer than {MAX_ELEMENT_BYTES} bytes"
    return None


@dataclass(frozen=True, slots=True)
class PathConflict:
    """Entries `first` < `second` (indexes into the names given) cannot both be written."""

    first: int
    second: int
    reason: str


def find_conflicts(names: Sequence[str]) -> tuple[PathConflict, ...]:
    """Pairs of final names that collide: equal, or one is a directory of the other.

    Each later entry is reported once, against the first earlier entry it collides with.
    """
    owners: dict[str, int] = {}  # exact file name -> first index
    dirs: dict[str, int] = {}  # every parent directory -> first index that needs it
    conflicts: list[PathConflict] = []
    for index, name in enumerate(names):
        parents = _parents(name)
        reason: PathConflict | None = None
        if name in owners:
            reason = PathConflict(owners[name], index, f"file name {name!r} is used twice")
        elif name in dirs:
            reason = PathConflict(
                dirs[name], index, f"file name {name!r} is also a directory of another file"
            )
        else:
            for parent in parents:
                if parent in owners:
                    reason = PathConflict(
                        owners[parent],
                        index,
                        f"file name {name!r} needs {parent!r} as a directory, but it is a file",
                    )
                    break
        if reason is not None:
            conflicts.append(reason)
            continue
        owners[name] = index
        for parent in parents:
            dirs.setdefault(parent, index)
    return tuple(conflicts)


def _parents(name: str) -> list[str]:
    elements = name.split("/")
    return ["/".join(elements[:end]) for end in range(1, len(elements))]
