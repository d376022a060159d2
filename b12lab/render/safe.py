"""Text from input made safe to show on a terminal or in a report.

A patient id, a header name or a value can carry terminal escape sequences
(ESC, C1 controls), line breaks, bidirectional overrides that reorder what is
shown, or invisible characters. Each such character is shown as an escape
(`\\x1b`, `\\u202e`) instead of acting on the terminal.
"""

from __future__ import annotations


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape_controls(text: str) -> str:
    """`text` with every non-printable character (controls, format characters such
    as bidi overrides and zero-width spaces, line and paragraph separators, and
    spaces other than the plain space) written as a visible escape."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def escape_optional(text: str | None) -> str | None:
    return None if text is None else escape_controls(text)
