"""Object names and URIs that cannot escape their root, however they are spelled.

Drop prefixes, scene ids and output names come from outside (a bucket notification, a CLI flag,
a file name). Every stage that turns such a string into a URI asks this module, so a name can
never reach another bucket, a parent folder, or collide with an existing id by case or Unicode
form alone. Pure string logic: the I/O layer resolves symlinks before calling
:func:`same_or_inside` where that matters.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable

# GCS rejects longer object names; refusing them here names the culprit instead of a 400.
MAX_NAME_BYTES = 1024
# A leading ``gs:``, ``file:``, ``C:``: a name that a URI parser or Windows would not read as a
# plain relative name.
_SCHEME_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_URI = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<rest>.*)$", re.DOTALL)
# Control (Cc), format (Cf: zero-width and bidi overrides), surrogates (Cs), line/paragraph
# separators: invisible or reordering characters that let two names look alike.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _refusal(name: str) -> str | None:
    """Why ``name`` (already NFC) is not a safe relative object name; None when it is."""
    if not name:
        return "empty name"
    for char in name:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return f"control or invisible character U+{ord(char):04X}"
    if "\\" in name:
        return "backslash in name"
    if "://" in name or _SCHEME_PREFIX.match(name):
        return "name carries a scheme or drive (another bucket or filesystem)"
    if name.startswith("/"):
        return "absolute path"
    if "//" in name:
        return "empty path segment ('//')"
    if name.endswith("/"):
        return "trailing '/' (a folder, not an object name)"
    for segment in name.split("/"):
        if segment in (".", ".."):
            return f"'{segment}' path segment"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"longer than {MAX_NAME_BYTES} bytes"
    return None


def normalize_name(name: str) -> str:
    """The NFC form of an object name relative to a root, or ValueError saying why not.

    Refuses empty names, ``.``/``..`` segments, absolute paths, schemes (``gs://other/…``),
    drive letters, backslashes, ``//``, a trailing ``/``, and control or invisible characters.
    Glob characters (``*?[]``) are ordinary characters of a name: the storage layer takes
    every name literally (:func:`pipelines.io.storage.literal`).
    A name whose compatibility form (NFKC) is a path trick, e.g. fullwidth ``．．／``, is
    refused too: some tools fold those characters, and then it would escape.
    """
    if not isinstance(name, str):
        raise ValueError(f"object name must be a string, not {type(name).__name__}")
    normalized = unicodedata.normalize("NFC", name)
    reason = _refusal(normalized)
    if reason is None:
        folded = unicodedata.normalize("NFKC", normalized)
        if folded != normalized and _refusal(folded) is not None:
            reason = f"looks like a path trick once Unicode-folded ({_refusal(folded)})"
    if reason is not None:
        raise ValueError(f"unsafe object name {name!r}: {reason}")
    return normalized


def confine(root: str, relative: str) -> str:
    """``root`` joined with the normalised ``relative`` name; guaranteed to lie under ``root``."""
    if not root:
        raise ValueError("empty root")
    name = normalize_name(relative)
    joined = f"{root.rstrip('/')}/{name}"
    if not same_or_inside(joined, root) or same_or_inside(root, joined):
        raise ValueError(f"{relative!r} does not stay inside {root}")  # defence in depth
    return joined


def _split(uri: str) -> tuple[str, str, str]:
    """(scheme, authority, path): ``file://`` and plain paths are both the local scheme ''."""
    uri = unicodedata.normalize("NFC", uri)
    found = _URI.match(uri)
    if found is None:
        return "", "", uri
    scheme, rest = found["scheme"].lower(), found["rest"]
    if scheme == "file":
        return "", "", rest
    authority, _, path = rest.partition("/")
    # Bucket and host names are case-insensitive (GCS allows lowercase only).
    return scheme, authority.lower(), "/" + path


def _lexical(path: str) -> tuple[str, ...]:
    """Segments after resolving ``.``, ``..`` and repeated slashes the way POSIX would."""
    absolute = path.startswith("/")
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments and segments[-1] != "..":
                segments.pop()
            elif not absolute:
                segments.append("..")
            continue
        segments.append(segment)
    return ("/" if absolute else ".", *segments)


def _literal(path: str) -> tuple[str, ...]:
    """Segments as an object store sees them: only repeated and trailing slashes collapse."""
    return ("/" if path.startswith("/") else ".", *(s for s in path.split("/") if s))


def same_or_inside(a: str, b: str, *, fold_case: bool = False) -> bool:
    """True when ``a`` is ``b`` or lies inside it, however either is spelled.

    Ignores trailing and repeated slashes, ``./``, the case of the scheme and bucket, NFC/NFD,
    and resolves ``..`` lexically. Object stores do not resolve ``..`` themselves, so for
    ``gs://`` both readings count: the answer errs towards "inside", the safe side for a
    refusal such as "output inside input". ``fold_case`` also ignores case in paths (for
    case-insensitive local filesystems). A relative and an absolute local path are never
    compared by guessing the working directory: make both absolute first.
    """
    (scheme_a, auth_a, path_a), (scheme_b, auth_b, path_b) = _split(a), _split(b)
    if (scheme_a, auth_a) != (scheme_b, auth_b):
        return False
    if fold_case:
        path_a, path_b = path_a.casefold(), path_b.casefold()
    readings = [_lexical] if not scheme_a else [_lexical, _literal]
    for read in readings:
        inner, outer = read(path_a), read(path_b)
        if inner[: len(outer)] == outer:
            return True
    return False


def case_key(name: str) -> str:
    """A key equal for names that differ only by case or Unicode form.

    Casefolded and NFKC-normalised (NFKC ⊇ NFC: it also folds fullwidth digits and ligatures,
    which would otherwise let ``１２３`` and ``123`` be two scene ids).
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def case_collisions(names: Iterable[str]) -> list[tuple[str, ...]]:
    """Groups of distinct names that share a :func:`case_key`, each sorted; sorted overall."""
    groups: defaultdict[str, set[str]] = defaultdict(set)
    for name in names:
        groups[case_key(name)].add(name)
    return sorted(tuple(sorted(group)) for group in groups.values() if len(group) > 1)
