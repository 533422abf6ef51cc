"""Text from outside (a file's names, a client's input) made safe to show, and client values checked.

viser renders markdown with its raw HTML *unsanitised* (its ``rehypeRawDom``: ``<iframe
srcdoc=...>`` or ``<img onerror=...>`` in a markdown element runs with access to the page of
every connected viewer), and it does not check that a value a client sends is one of a control's
options. So everything the viewer shows that a file or a client chose goes through `md` (shown
verbatim, never parsed as markdown or HTML), and every value a client sends is checked against
what the control offers (`pick`, `finite`) before anything acts on it; a value that is not is
ignored (and the control is set back by the caller).

Other places viser shows text (labels, button and dropdown options, hints, notifications, plot
series names) render it as text, never as HTML; `plain` still flattens control characters there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
#: Characters that start markdown syntax anywhere in a line: backslash-escaped (``[`` opens links and
#: images, ``|`` ends a table cell; ``<`` and ``&``, raw HTML and entities, are in `_HTML`).
_PUNCT = re.compile(r"""([\\`*_\[\]|~#])""")
#: What starts a block only at the start of a line (a list item, a heading underline, a numbered list).
_LEADING = re.compile(r"^([-+=]|\d+(?=[.)]))")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def plain(text: Any, limit: int = 200) -> str:
    """``text`` on one line: control characters (newlines included) as one space, cut to ``limit``."""
    s = _CONTROL.sub(" ", str(text))
    return s if len(s) <= limit else s[: limit - 1] + "…"


def md(text: Any, limit: int = 200) -> str:
    """``text`` as markdown that shows exactly its characters (`plain` first): HTML's special
    characters as entities, markdown's (emphasis, code, links, table cells, a list or heading at
    the start) backslash-escaped, so nothing in it becomes a tag, a link, emphasis, code or a
    table cell boundary."""
    s = _PUNCT.sub(r"\\\1", plain(text, limit))
    s = "".join(_HTML.get(c, c) for c in s)
    m = _LEADING.match(s)
    return s if m is None else (f"\\{s}" if not m.group(1).isdigit() else m.group(1) + "\\" + s[m.end():])


def pick(value: Any, options: Sequence[str]) -> str | None:
    """``value`` if it is one of ``options`` (a client may send anything), else None."""
    return value if isinstance(value, str) and value in options else None


def finite(value: Any) -> float | None:
    """``value`` as a finite float, or None (a client may send a string, NaN or infinity)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


__all__ = ["finite", "md", "pick", "plain"]
