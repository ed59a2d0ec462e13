"""CSV cells a spreadsheet will not run (OWASP CSV injection): one rule for every export."""

from __future__ import annotations

from typing import Any

# A spreadsheet takes a cell beginning with one of these for a formula (or, after a
# tab/CR, for the start of one).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """Text that could start a formula gets a leading ' so it shows as text.

    The column's type decides, not the look of the text: numbers (int/float) are left
    alone, so a negative number in a numeric column stays a number; "-5" as text is quoted.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
