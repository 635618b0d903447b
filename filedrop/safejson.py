"""JSON from strangers: one parser for every body the apps read (filedrop's uploads, and
teleconsult's pre-call offers and Prosody's room events).

`json.loads` raises more than JSONDecodeError on hostile input: RecursionError when arrays
or objects nest deeper than the interpreter's stack (a 60 KB body is enough), ValueError
when an integer has more than 4,300 digits (Python's int conversion limit), and it accepts
NaN and Infinity, which are not JSON (nor is 1e999, which Python reads as infinity). `loads` turns every one of these into `BadJSON` (a
ValueError), so callers catch one error and answer 400. Nothing here touches HTTP.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["BadJSON", "loads"]


class BadJSON(ValueError):
    """Not JSON, or JSON this server refuses to decode (too deep, a huge number, NaN)."""


def _refuse_constant(name: str) -> Any:
    raise BadJSON(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise BadJSON("a number in the JSON is too large")
    return value


def loads(data: bytes | str) -> Any:
    """Decode `data` (UTF-8 bytes or text); BadJSON for anything malformed or hostile.

    The message says what is wrong in general terms and never repeats the input."""
    try:
        return json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)
    except BadJSON:
        raise
    except json.JSONDecodeError as exc:
        raise BadJSON(f"not JSON: {exc.msg} at position {exc.pos}") from None
    except RecursionError:
        raise BadJSON("JSON nested too deeply") from None
    except UnicodeDecodeError:
        raise BadJSON("not UTF-8 text") from None
    except ValueError:  # int() refusing more than sys.get_int_max_str_digits() digits
        raise BadJSON("a number in the JSON is too long") from None
