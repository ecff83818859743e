"""One rule, for the CLI and the service alike, for a text the model can read.

The backbone's tokenizer (BERT's normaliser) deletes control, format, surrogate, private-use and
unassigned code points (categories C*), non-spacing marks (removed with the accents),
whitespace and U+FFFD before it splits words. A text of only these reaches the model empty, and
every such text would get the same meaningless vector: both ``sentence-mtl`` commands and the
HTTP service refuse it.
"""

from __future__ import annotations

import re
import unicodedata

# whitespace as JSON Schema patterns (ECMA-262) define \s, which differs from str.isspace()
# (that also counts U+001C..U+001F and U+0085, but not U+FEFF): the server must agree with its schema
ECMA_SPACE = re.compile("[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]*")
_SPACES = frozenset(c for c in map(chr, range(0x3001)) if ECMA_SPACE.fullmatch(c)) | {"\ufeff"}


def unreadable(cp: int) -> bool:
    """Whether the tokenizer deletes code point ``cp`` (see the module docstring)."""
    char = chr(cp)
    category = unicodedata.category(char)
    return category[0] == "C" or category in ("Mn", "Zs") or cp == 0xFFFD or char in _SPACES


def is_readable(text: str) -> bool:
    """At least one character the model reads (stops at the first, so cheap for ordinary text)."""
    return any(not unreadable(ord(c)) for c in text)


UNREADABLE_HINT = ("only whitespace, control, format or combining characters, such as a zero-width space, "
                   "NUL or a byte-order mark")
