"""The argument types of our OSC API: one validator per field kind, whose errors name the
allowed range, and the repeated group (notes, chords, chunk indices) some messages end with."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from bridge.errors import BadMessageError
from bridge.osc import WireValue

INT32_MAX = 2**31 - 1
FLOAT32_MAX = 3.4028234663852886e38


def json_object(text: str, what: str, reason: str = "json") -> dict[str, Any]:
    """The JSON object in `text` that came from outside (a generate's params, a result's
    summary, a spool file's options): the one parse with the one error, BadMessageError naming
    `what`. Absurd nesting and NaN/Infinity (not JSON numbers) are refused like bad syntax."""

    def refuse_constant(name: str) -> None:
        raise ValueError(f"{name} is not a JSON number")

    try:
        value = json.loads(text, parse_constant=refuse_constant)
    except RecursionError as err:
        raise BadMessageError(f"{what} is not JSON: nested too deeply", reason) from err
    except ValueError as err:  # json.JSONDecodeError, and the refused constants
        raise BadMessageError(f"{what} is not JSON: {err}", reason) from err
    if not isinstance(value, dict):
        raise BadMessageError(f"{what} must be a JSON object, got {type(value).__name__}", reason)
    return value


class _Invalid(ValueError):
    """A value outside its field's range; the caller names the field (labels are built only
    on failure: validation runs for every note of every chunk)."""


@dataclass(frozen=True)
class Int:
    """An OSC int32 in lo..hi (or one of `choices`)."""

    lo: int
    hi: int = INT32_MAX
    choices: tuple[int, ...] = ()
    tag: ClassVar[str] = "i"

    def check(self, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"must be an integer, got {value!r}")
        if self.choices and value not in self.choices:
            raise _Invalid(f"must be one of {self.describe()}, got {value}")
        if not self.lo <= value <= self.hi:
            raise _Invalid(f"must be in {self.describe()}, got {value}")
        return value

    def describe(self) -> str:
        if self.choices:
            return ", ".join(map(str, self.choices))
        return f"{self.lo}..{'2³¹−1' if self.hi == INT32_MAX else self.hi}"


@dataclass(frozen=True)
class Float:
    """An OSC float32, finite, in lo..hi (lo excluded when `lo_open`)."""

    lo: float
    hi: float = FLOAT32_MAX
    lo_open: bool = False
    tag: ClassVar[str] = "f"

    def check(self, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Invalid(f"must be a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise _Invalid(f"must be a finite number, got {number}")
        too_low = number <= self.lo if self.lo_open else number < self.lo
        if too_low or number > self.hi:
            raise _Invalid(f"must be {self.describe()}, got {number:g}")
        return number

    def describe(self) -> str:
        low = f"> {self.lo:g}" if self.lo_open else f"≥ {self.lo:g}"
        return low if self.hi == FLOAT32_MAX else f"{low} and ≤ {self.hi:g}"


@dataclass(frozen=True)
class Text:
    """An OSC string of min_bytes..max_bytes UTF-8 bytes, optionally matching `pattern`."""

    max_bytes: int
    min_bytes: int = 0
    pattern: str | None = None
    tag: ClassVar[str] = "s"

    def check(self, value: object) -> str:
        if not isinstance(value, str):
            raise _Invalid(f"must be a string, got {value!r}")
        if "\x00" in value:
            raise _Invalid("must not contain NUL characters")
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError as err:
            raise _Invalid(f"is not valid Unicode text: {err}") from err
        if not self.min_bytes <= size <= self.max_bytes:
            raise _Invalid(f"must be {self.describe()}, got {size} bytes")
        if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            raise _Invalid(f"must match {self.pattern}, got {value[:40]!r}")
        return value

    def describe(self) -> str:
        size = (f"{self.min_bytes}" if self.min_bytes == self.max_bytes
                else f"{self.min_bytes}..{self.max_bytes}")
        text = f"{size} bytes UTF-8"
        return text if self.pattern is None else f"{text}, {self.pattern}"


Field = Int | Float | Text
Args = tuple[tuple[str, Field], ...]


def check_values(args: Args, values: Sequence[object], where: str) -> list[WireValue]:
    """`values` checked against `args`; BadMessageError naming `where` and the field."""
    checked: list[WireValue] = []
    for (name, field), value in zip(args, values, strict=True):
        try:
            checked.append(field.check(value))
        except _Invalid as err:
            raise BadMessageError(f"{where} {name} {err}", "value") from err
    return checked


@dataclass(frozen=True)
class Group:
    """A repeated group of arguments at the end of a message, held as a tuple of objects."""

    field: str  # the message attribute holding the items
    item: str  # what one item is called in errors and docs
    args: Args
    min_items: int
    max_items: int
    make: Callable[..., Any]
    split: Callable[[Any], tuple[Any, ...]]

    @property
    def tags(self) -> str:
        return "".join(f.tag for _, f in self.args)
