"""File names of the file store's task files: every task id the kernel accepts has one.

An id is its own file name (before the suffix) whenever it can be: ids of letters, digits and
most punctuation keep the names they had before ids were escaped. Otherwise:

* ``/ \\ : * ? " < > |``, control characters, the escape character ``%`` itself, a leading
  ``.`` (hidden files are the store's own) and a trailing ``.`` or space (which Windows drops)
  are written as ``%XX`` per UTF-8 byte (upper-case hex), e.g. ``a/b`` -> ``a%2Fb``;
* a name that would then be longer than :data:`SAFE_NAME_BYTES` bytes of UTF-8 (191 characters
  of some scripts are 764 bytes; file systems allow 255) is named by a hash of the id instead,
  ``%%`` and 40 hex digits, and the file then starts with a line :data:`HASHED_MAGIC` + the id
  in JSON, so that the directory can be read back without the journal.

A name is *canonical* when it is exactly what :func:`file_stem` gives for the id it decodes
to. A name that is not (an id such as ``50%`` or ``a.``, valid as a file name before ids were
escaped) is an old name: its id is the name itself, and the store renames the file to the
canonical name at start. The only names both readings could claim are old ids that contain a
``%XX`` sequence of an escaped character (``a%2Fb``): they are read as escaped.

File systems that ignore case (macOS and Windows by default) cannot hold two ids that differ
only in case: adding the second is refused (``ConflictIdError``), never written over the first.
"""

from __future__ import annotations

import hashlib
import json
import re

__all__ = [
    "HASHED_MAGIC",
    "SAFE_NAME_BYTES",
    "decode_stem",
    "file_stem",
    "hashed_header",
    "hashed_id",
    "hashed_stem",
    "is_hashed",
]

#: The longest file name stem (in bytes of UTF-8) the store writes; longer ones are hashed.
SAFE_NAME_BYTES = 200
#: First bytes of a task file named by a hash: then the id in JSON and a newline.
HASHED_MAGIC = b"asyncz-task-id "

_NEEDS_ESCAPE = re.compile(r'[/\\:*?"<>|%\x00-\x1f\x7f-\x9f\ud800-\udfff]|\A\.|[. ]\Z')
_UNSAFE = frozenset('/\\:*?"<>|%')
_HASHED = re.compile(r"%%[0-9a-f]{40}\Z")
_ESCAPED = re.compile(r"(?:%[0-9A-F]{2})+")


def _unsafe(char: str) -> bool:
    code = ord(char)
    return char in _UNSAFE or code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF


def _escape(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))


def file_stem(task_id: str) -> str:
    """The file name of ``task_id``, without the store's suffix."""
    if _NEEDS_ESCAPE.search(task_id) is None:
        stem = task_id
    else:
        last = len(task_id) - 1
        stem = "".join(
            _escape(char)
            if _unsafe(char) or (i == 0 and char == ".") or (i == last and char in ". ")
            else char
            for i, char in enumerate(task_id)
        )
    # At most 4 bytes a character: short names need no encoding to be measured.
    if len(stem) > SAFE_NAME_BYTES // 4 and len(stem.encode("utf-8", "surrogatepass")) > (
        SAFE_NAME_BYTES
    ):
        return hashed_stem(task_id)
    return stem


def hashed_stem(task_id: str) -> str:
    """The name of a task whose escaped id is too long for a file name."""
    digest = hashlib.sha256(task_id.encode("utf-8", "surrogatepass")).hexdigest()
    return f"%%{digest[:40]}"


def is_hashed(stem: str) -> bool:
    return _HASHED.match(stem) is not None


def hashed_header(task_id: str) -> bytes:
    """The first line of a task file named by a hash."""
    return HASHED_MAGIC + json.dumps(task_id).encode("ascii") + b"\n"


def hashed_id(data: bytes) -> tuple[str, bytes] | None:
    """The id and the record in the content of a task file named by a hash (None if the
    content does not start with the header)."""
    if not data.startswith(HASHED_MAGIC):
        return None
    end = data.find(b"\n")
    if end < 0:
        return None
    try:
        task_id = json.loads(data[len(HASHED_MAGIC) : end])
    except ValueError:
        return None
    return (task_id, data[end + 1 :]) if isinstance(task_id, str) else None


def decode_stem(stem: str) -> str | None:
    """The id whose canonical file name is ``stem``; None when ``stem`` is not canonical (an
    old name, whose id is the name itself) or names a file by a hash (its id is inside)."""
    if "%" not in stem:
        return stem if file_stem(stem) == stem else None
    if is_hashed(stem):
        return None

    def unescape(match: re.Match[str]) -> str:
        hexes = match.group(0)[1:].split("%")
        return bytes(int(h, 16) for h in hexes).decode("utf-8", "surrogatepass")

    try:
        task_id = _ESCAPED.sub(unescape, stem)
    except UnicodeDecodeError:
        return None
    return task_id if file_stem(task_id) == stem else None
