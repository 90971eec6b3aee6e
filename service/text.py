"""Text the API stores: no NUL, no other control characters, no lone surrogates.

PostgreSQL refuses NUL in text and JSON (a 500 there), SQLite stores it, and a line break or an
escape sequence in a name reaches terminals and logs. So every string a request carries into
storage is checked here, with one rule: `PlainText` for the typed fields, and `control_in` for
free-form JSON (a spec's `config`, `env_config` and `search`, keys included).

Example:
    >>> from pydantic import TypeAdapter
    >>> TypeAdapter(PlainText).validate_python("cartpole run 3")
    'cartpole run 3'
    >>> control_in({"config": {"note": "a\\x00b"}})
    [('config', 'note')]
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

# Cc: C0 and C1 controls (NUL, tab, CR, LF, ESC, DEL...); Cs: lone surrogates (not UTF-8).
_REFUSED_CATEGORIES = ("Cc", "Cs")
REFUSED_MESSAGE = "control characters (NUL, line breaks, tabs, escapes) are not allowed"

Location = tuple[str, ...]


def first_control(text: str) -> str | None:
    """The first refused character in `text` as U+XXXX, or None when there is none."""
    for char in text:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return f"U+{ord(char):04X}"
    return None


def plain_text(text: str) -> str:
    """`text` unchanged, or a pydantic error naming the first control character in it."""
    found = first_control(text)
    if found is not None:
        raise PydanticCustomError(
            "control_character", f"{REFUSED_MESSAGE}: {found}", {"character": found}
        )
    return text


# What the OpenAPI document says of such a string (the C0 and C1 controls; the check is above).
SCHEMA_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
PlainText = Annotated[
    str, AfterValidator(plain_text), Field(json_schema_extra={"pattern": SCHEMA_PATTERN})
]


def control_in(value: Any, location: Location = ()) -> list[Location]:
    """Where a JSON-like value holds a refused character: in a string, or in a key (then the
    location ends at that key)."""
    if isinstance(value, str):
        return [location] if first_control(value) is not None else []
    found: list[Location] = []
    if isinstance(value, dict):
        for key, item in value.items():
            here = (*location, str(key))
            if isinstance(key, str) and first_control(key) is not None:
                found.append(here)
            else:
                found += control_in(item, here)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found += control_in(item, (*location, str(index)))
    return found
