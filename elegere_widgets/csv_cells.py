"""CSV cells a spreadsheet would evaluate, made inert, and back: one rule for both sides.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to
Excel, LibreOffice and Google Sheets (``=HYPERLINK(...)`` in a server's name would be a link
in an auditor's sheet). The service writes such a cell with one ``'`` in front, which the
spreadsheets show as text. So that reading the CSV back gives exactly the original text, a
cell that starts with quotes followed by such a character gets one more quote too:

    ``=1+1`` -> ``'=1+1``    ``'=1+1`` -> ``''=1+1``    ``'hello`` and ``a=b`` stay as they are

and reading removes one leading quote exactly where the rule added one (one or more quotes,
then a trigger character).
"""

from __future__ import annotations

import re

#: Characters that make a spreadsheet evaluate a cell when they lead it.
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"
#: What a written cell looks like when the rule added a quote.
NEUTRALISED = re.compile(r"'+[=+\-@\t\r]")


def needs_quote(text: str) -> bool:
    return text.lstrip(QUOTE)[:1] in TRIGGERS  # a tuple: "" is not in it


def neutralise(text: str | None) -> str | None:
    """The cell as the service writes it."""
    if text and needs_quote(text):
        return QUOTE + text
    return text


def restore(text: str | None) -> str | None:
    """The original text of a cell the service wrote."""
    if text and NEUTRALISED.match(text):
        return text[1:]
    return text
