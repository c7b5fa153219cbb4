"""ClickHouse values -> DynamoDB AttributeValues, exactly or not at all.

Pure functions, no AWS and no ClickHouse connection: ``ItemConverter`` is
built once from the relation's column names and ClickHouse types (as
``DESCRIBE`` prints them) and then turns each row, as clickhouse-connect
returns it with ``query_formats={'String': 'bytes', 'FixedString': 'bytes'}``,
into a boto3 client item (``{"attr": {"N": "12.5"}}``, B as ``bytes``).

Rules (also in README "Push a model back to DynamoDB"):

- integers and decimals -> N, written exactly from the integer or Decimal,
  never through a float; floats -> N from their shortest round-trip text;
- String / FixedString -> S (must be valid UTF-8), or B for columns named
  binary; Bool -> BOOL; Date -> S ``YYYY-MM-DD``; DateTime / DateTime64 -> S
  ISO 8601 UTC ``YYYY-MM-DDThh:mm:ss[.f]Z`` (the reader formats them in
  ClickHouse so DateTime64(9) keeps its nanoseconds); UUID, IPv4/6, Enum -> S;
- Array -> L, or SS / NS / BS for columns named as sets (an empty set is left
  out: DynamoDB has no empty set); Map and Tuple -> M
  (a Tuple without element names uses "1", "2", ... as in tupleElement);
- NULL: a top-level NULL is omitted or written as NULL (option); inside L and
  M it is always NULL (omitting it would shift a list);
- a value DynamoDB would refuse raises ``Refused`` with the column and the
  reason, so the row is set aside whole: a NULL or empty key, a key over
  2048 / 1024 bytes, a duplicated set, a number with more than 38
  significant digits or outside 1E-130 .. 9.9999999999999999999999999999999999999E+125,
  NaN / Infinity, text that is not UTF-8, an item over 400 KB.

Types that cannot be pushed exactly (JSON, Dynamic, Variant, Object, Nested,
aggregate states, geo types, DateTime64 with more than 6 digits inside a
container) raise ``UnsupportedColumn`` before anything is read.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
import struct
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

from .errors import UsageError

MAX_ITEM_BYTES = 400 * 1024
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024
MAX_DIGITS = 38
MIN_EXPONENT = -130  # smallest magnitude 1E-130
MAX_EXPONENT = 125  # largest magnitude 9.99..E+125 (adjusted exponent 125)
MAX_DEPTH = 32

NUMBER_RANGE = "38 significant digits, magnitude 1E-130 .. 9.9999999999999999999999999999999999999E+125"

OMIT = object()  # a top-level NULL that is not written
ABSENT = object()  # an empty set: DynamoDB has none; the attribute is left out, whatever --nulls says


class Refused(ValueError):
    """A row DynamoDB would refuse; ``reason`` says which column and why."""


class UnsupportedColumn(UsageError):
    """A column whose type cannot be pushed exactly; raised before any row is read."""


@dataclass(frozen=True)
class ConvertOptions:
    nulls: str = "omit"  # "omit" or "null"
    sets: frozenset = field(default_factory=frozenset)  # columns written as SS / NS / BS
    binary: frozenset = field(default_factory=frozenset)  # String columns written as B

    def __post_init__(self):
        if self.nulls not in ("omit", "null"):
            raise UsageError(f"nulls must be 'omit' or 'null', not {self.nulls!r}")


# -- numbers ---------------------------------------------------------------------


def number_string(value: int | Decimal) -> str:
    """The exact DynamoDB N text of an integer or Decimal; ``Refused`` if DynamoDB cannot hold it.

    Trailing zeros are not significant (DynamoDB normalises them), so 10**50 is
    accepted and written ``1E+50``; 12345678901234567890123456789012345678901
    (41 significant digits) is refused.
    """
    if isinstance(value, bool):
        raise TypeError("a bool is not a number")
    d = Decimal(value) if isinstance(value, int) else value
    if not d.is_finite():
        raise Refused(f"{d} is not a finite number")
    sign, digits, exponent = d.as_tuple()
    # strip leading zeros (a Decimal tuple may carry them only for zero) and trailing zeros
    digits = list(digits)
    while len(digits) > 1 and digits[0] == 0:
        digits.pop(0)
    if digits == [0]:
        return "0"
    while digits[-1] == 0:
        digits.pop()
        exponent += 1
    adjusted = exponent + len(digits) - 1
    if len(digits) > MAX_DIGITS:
        raise Refused(f"number {_short(d)} has {len(digits)} significant digits; DynamoDB keeps {NUMBER_RANGE}")
    if adjusted > MAX_EXPONENT or adjusted < MIN_EXPONENT:
        raise Refused(f"number {_short(d)} is out of DynamoDB's range ({NUMBER_RANGE})")
    if exponent >= 0 and adjusted < MAX_DIGITS:
        return f"{'-' if sign else ''}{''.join(map(str, digits))}{'0' * exponent}"
    if exponent < 0 and adjusted >= -MAX_DIGITS:
        s = "".join(map(str, digits))
        point = len(s) + exponent
        body = (s[:point] + "." + s[point:]) if point > 0 else ("0." + "0" * (-point) + s)
        return ("-" if sign else "") + body
    return str(Decimal((sign, tuple(digits), exponent)))  # scientific: 1.2E+60, 5E-100


def _short(d: Decimal) -> str:
    s = str(d)
    return s if len(s) <= 60 else s[:28] + "..." + s[-28:]


def float_number_string(value: float, single: bool = False) -> str:
    """A float's number string: the shortest text that reads back as the same float, a Float32's
    (``single``) as the same Float32 (0.1, not 0.10000000149011612)."""
    if math.isnan(value) or math.isinf(value):
        raise Refused(f"{value} is not a number DynamoDB can store")
    text = repr(value)
    if single:
        for digits in range(1, 10):  # 9 significant digits always read back as the same Float32
            text = f"{value:.{digits}g}"
            if struct.unpack("<f", struct.pack("<f", float(text)))[0] == value:
                break
    return number_string(Decimal(text))


# -- sizes -----------------------------------------------------------------------


def attribute_size(av: dict) -> int:
    """DynamoDB's size of an AttributeValue (bytes), as its documentation computes item sizes."""
    (tag, v), = av.items()
    if tag == "S":
        return len(v.encode())
    if tag == "B":
        return len(v)
    if tag == "N":
        return _number_size(v)
    if tag in ("BOOL", "NULL"):
        return 1
    if tag == "SS":
        return sum(len(s.encode()) for s in v)
    if tag == "BS":
        return sum(len(b) for b in v)
    if tag == "NS":
        return sum(_number_size(n) for n in v)
    if tag == "L":
        return 3 + sum(1 + attribute_size(x) for x in v)
    if tag == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_size(x) for k, x in v.items())
    raise ValueError(f"unknown AttributeValue tag {tag}")


def _number_size(text: str) -> int:
    mantissa = text.lstrip("-").split("E")[0].replace(".", "").strip("0")
    return 1 + (len(mantissa) + 1) // 2


def item_size(item: dict) -> int:
    return sum(len(name.encode()) + attribute_size(av) for name, av in item.items())


# -- type compilation ------------------------------------------------------------

Converter = Callable[[Any], Any]  # value -> AttributeValue dict (or OMIT at top level)

_INTS = {"Int8", "Int16", "Int32", "Int64", "Int128", "Int256",
         "UInt8", "UInt16", "UInt32", "UInt64", "UInt128", "UInt256"}
_FLOATS = {"Float32", "Float64", "BFloat16"}
_TEXTUAL = {"UUID", "IPv4", "IPv6", "Enum8", "Enum16", "Enum"}
_STRINGS = {"String", "FixedString"}


def parse_type(ch_type: str):
    """The clickhouse-connect type object for a ClickHouse type name (as DESCRIBE prints it)."""
    from clickhouse_connect.datatypes.registry import get_from_name

    return get_from_name(ch_type)


def scalar_tag(t, binary: bool) -> str | None:
    """S, N or B when the type is a scalar DynamoDB key can be, else None."""
    base = t.base_type
    if base in _INTS or base in _FLOATS or base == "Decimal":
        return "N"
    if base in _STRINGS:
        return "B" if binary else "S"
    if base in _TEXTUAL or base in ("Date", "Date32", "DateTime", "DateTime64"):
        return "S"
    return None


def _decode(column: str, value) -> str:
    if isinstance(value, str):
        return value
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError as ex:
        raise Refused(
            f"column {column}: text is not valid UTF-8 at byte {ex.start}; "
            f"push it as binary with --binary {column}"
        ) from None


def _compile(t, column: str, *, binary: bool, as_set: bool, top: bool, depth: int) -> Converter:
    if depth > MAX_DEPTH:
        raise UnsupportedColumn(f"column {column}: nested deeper than DynamoDB's {MAX_DEPTH} levels")
    base = t.base_type
    inner = _compile_non_null(t, column, binary=binary, as_set=as_set, top=top, depth=depth)
    if not (t.nullable or base == "Nothing"):
        return inner

    def nullable(value):
        if value is None:
            return OMIT if top else {"NULL": True}
        return inner(value)

    return nullable


def _compile_non_null(t, column, *, binary, as_set, top, depth) -> Converter:
    base = t.base_type
    if as_set and base != "Array":
        raise UnsupportedColumn(f"column {column}: only an Array column can be written as a set (it is {t.name})")
    if base == "Nothing":
        return lambda v: {"NULL": True}
    if base in _INTS or base == "Decimal":
        return lambda v: {"N": _num(column, v)}
    if base in _FLOATS:
        if base != "Float64":  # the shortest text that reads back as the same Float32 (as ClickHouse shows it)
            return lambda v: {"N": _float(column, v, single=True)}
        return lambda v: {"N": _float(column, v)}
    if base == "Bool":
        return lambda v: {"BOOL": bool(v)}
    if base in _STRINGS:
        if binary:
            return lambda v: {"B": bytes(v) if not isinstance(v, str) else v.encode()}
        return lambda v: {"S": _decode(column, v)}
    if base in _TEXTUAL:
        return lambda v: {"S": _decode(column, v) if isinstance(v, (bytes, bytearray)) else _text(v)}
    if base in ("Date", "Date32"):
        return lambda v: {"S": v.isoformat() if isinstance(v, dt.date) else _decode(column, v)}
    if base in ("DateTime", "DateTime64"):
        scale = getattr(t, "scale", 0) if base == "DateTime64" else 0
        if not top and scale > 6:
            raise UnsupportedColumn(
                f"column {column}: DateTime64({scale}) inside {('an Array, Map or Tuple')} would lose "
                "its sub-microsecond digits; cast it to String in the model"
            )
        return lambda v: {"S": _datetime_text(column, v, scale)}
    if base == "Array":
        element = t.element_type
        if as_set:
            return _compile_set(element, column, binary=binary)
        conv = _compile(element, column, binary=binary, as_set=False, top=False, depth=depth + 1)
        return lambda v: {"L": [conv(x) for x in v]}
    if base == "Map":
        key_tag = scalar_tag(t.key_type, False)
        if key_tag is None or t.key_type.nullable:
            raise UnsupportedColumn(f"column {column}: Map keys of type {t.key_type.name} cannot be attribute names")
        key_conv = _compile(t.key_type, column, binary=False, as_set=False, top=False, depth=depth + 1)
        val_conv = _compile(t.value_type, column, binary=binary, as_set=False, top=False, depth=depth + 1)

        def map_key(k) -> str:
            (tag, text), = key_conv(k).items()
            return text

        def to_map(v):  # (k, x) pairs as read (query_formats Map: pairs): a ClickHouse Map may hold a key twice
            out = {}
            for k, x in (v.items() if isinstance(v, dict) else v):
                name = map_key(k)
                if name in out:
                    raise Refused(f"column {column}: the map holds the key {name!r} more than once; "
                                  "a DynamoDB map holds each name once")
                out[name] = val_conv(x)
            return {"M": out}

        return to_map
    if base == "Tuple":
        names = list(t.element_names) or [str(i + 1) for i in range(len(t.element_types))]
        convs = [_compile(e, column, binary=binary, as_set=False, top=False, depth=depth + 1)
                 for e in t.element_types]

        def tuple_map(v):
            values = [v[n] for n in names] if isinstance(v, dict) else list(v)
            return {"M": {n: c(x) for n, c, x in zip(names, convs, values)}}

        return tuple_map
    raise UnsupportedColumn(
        f"column {column}: type {t.name} cannot be pushed to DynamoDB exactly; "
        "cast it in the model (e.g. to String) or leave it out with --exclude"
    )


def _compile_set(element, column: str, *, binary: bool) -> Converter:
    tag = scalar_tag(element, binary)
    if tag is None:
        raise UnsupportedColumn(f"column {column}: a set needs String, binary or number elements, not {element.name}")
    elem = _compile(element, column, binary=binary, as_set=False, top=False, depth=1)
    set_tag = tag + "S"

    def to_set(v):
        if len(v) == 0:  # (an item without the set flattens to [], so this is its way back)
            return ABSENT
        members = []
        for x in v:
            if x is None:
                raise Refused(f"column {column}: a set cannot hold NULL")
            (_, m), = elem(x).items()
            members.append(m)
        if len(set(members)) != len(members):
            raise Refused(f"column {column}: the set holds duplicate values; DynamoDB sets are unique")
        return {set_tag: members}

    return to_set


def _num(column: str, v) -> str:
    try:
        return number_string(v)
    except Refused as ex:
        raise Refused(f"column {column}: {ex}") from None


def _float(column: str, v, single: bool = False) -> str:
    try:
        return float_number_string(float(v), single=single)
    except Refused as ex:
        raise Refused(f"column {column}: {ex}") from None


def _text(v) -> str:
    """UUID, IPv4, IPv6, Enum as ClickHouse writes them: an IPv4-mapped IPv6 address as ::ffff:1.2.3.4
    (Python 3.11 writes ::ffff:102:304)."""
    mapped = getattr(v, "ipv4_mapped", None)
    if mapped is not None:
        return f"::ffff:{mapped}"
    packed = getattr(v, "packed", b"")
    if len(packed) == 16 and not any(packed[:12]) and any(packed[12:14]):
        # IPv4-compatible (::1.2.3.4), as ClickHouse's formatIPv6 writes it; Python writes ::102:304
        return "::" + ".".join(str(b) for b in packed[12:])
    return str(v)


def _datetime_text(column: str, v, scale: int) -> str:
    """ISO 8601 UTC.  The reader sends top-level date-times as ClickHouse's toString(col, 'UTC')."""
    if isinstance(v, (bytes, bytearray)):
        v = v.decode()
    if isinstance(v, str):
        return v.replace(" ", "T", 1) + "Z"
    if v.tzinfo is not None:
        v = v.astimezone(dt.timezone.utc).replace(tzinfo=None)
    text = v.strftime("%Y-%m-%dT%H:%M:%S")
    if scale:
        text += "." + f"{v.microsecond:06d}"[:scale]
    return text + "Z"


# -- items -------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    type: str


class ItemConverter:
    """Turns rows of a relation into DynamoDB items, checking everything DynamoDB would refuse."""

    def __init__(self, columns: list[Column], key: list[str], options: ConvertOptions = ConvertOptions()):
        names = [c.name for c in columns]
        for option, wanted in (("--sets", options.sets), ("--binary", options.binary), ("key", key)):
            missing = [w for w in wanted if w not in names]
            if missing:
                raise UnsupportedColumn(f"{option} names column(s) not in the relation: {', '.join(missing)}")
        if not 1 <= len(key) <= 2 or len(set(key)) != len(key):
            raise UnsupportedColumn(f"the key is a partition key and an optional sort key, not {key}")
        for c in columns:  # (else the option would be ignored, the column written as it would be without it)
            if c.name in options.binary and not re.search(r"\b(Fixed)?String\b", c.type):
                raise UnsupportedColumn(f"--binary names column {c.name}, of type {c.type}: only String and "
                                        "FixedString values (also in an Array, Map or Tuple) are written as B")
        self.columns = columns
        self.key = list(key)
        self.options = options
        self.key_types: dict[str, str] = {}
        self._convs: list[tuple[str, Converter]] = []
        for c in columns:
            t = parse_type(c.type)
            if c.name in key:
                tag = scalar_tag(t, c.name in options.binary)
                if tag is None or c.name in options.sets:
                    raise UnsupportedColumn(f"key column {c.name} is {c.type}; a DynamoDB key is S, N or B")
                self.key_types[c.name] = tag
            conv = _compile(t, c.name, binary=c.name in options.binary, as_set=c.name in options.sets,
                            top=True, depth=1)
            self._convs.append((c.name, conv))
        self._key_index = [names.index(k) for k in key]

    def convert(self, row) -> dict:
        """The item for one row (boto3 client form); ``Refused`` names the column and the reason."""
        item: dict = {}
        for (name, conv), value in zip(self._convs, row):
            if name in self.key_types:
                if value is None:
                    raise Refused(f"key column {name} is NULL")
            av = conv(value)
            if av is ABSENT:
                continue
            if av is OMIT:
                if self.options.nulls == "null":
                    item[name] = {"NULL": True}
                continue
            item[name] = av
        for i, name in enumerate(self.key):
            (tag, v), = item[name].items()
            size = len(v.encode()) if tag != "B" else len(v)
            limit = MAX_PARTITION_KEY_BYTES if i == 0 else MAX_SORT_KEY_BYTES
            if tag != "N" and size == 0:
                raise Refused(f"key column {name} is empty; DynamoDB keys cannot be empty")
            if size > limit:
                raise Refused(f"key column {name} is {size} bytes; DynamoDB allows {limit}")
        size = item_size(item)
        if size > MAX_ITEM_BYTES:
            raise Refused(f"the item is {size:,} bytes; DynamoDB allows 400 KB ({MAX_ITEM_BYTES:,} bytes)")
        return item

    def key_of(self, item: dict) -> dict:
        return {k: item[k] for k in self.key}

    def key_json_of(self, row) -> str:
        """The key of a row as DynamoDB JSON, or '' when the key itself cannot be converted."""
        key = {}
        for (name, conv), value in zip(self._convs, row):
            if name in self.key_types:
                if value is None:
                    return ""
                try:
                    key[name] = conv(value)
                except Refused:
                    return ""
        return item_json(key)


# -- DynamoDB JSON text --------------------------------------------------------------


def to_json_value(av: dict):
    """An AttributeValue as DynamoDB JSON (B and BS as base64 text), as exports and ImportTable use."""
    (tag, v), = av.items()
    if tag == "B":
        return {"B": base64.b64encode(v).decode()}
    if tag == "BS":
        return {"BS": [base64.b64encode(b).decode() for b in v]}
    if tag == "L":
        return {"L": [to_json_value(x) for x in v]}
    if tag == "M":
        return {"M": {k: to_json_value(x) for k, x in v.items()}}
    return {tag: v}


def item_json(item: dict) -> str:
    """Compact DynamoDB JSON of an item, keys sorted: the same item always gives the same text."""
    return json.dumps({k: to_json_value(v) for k, v in item.items()}, separators=(",", ":"),
                      sort_keys=True, ensure_ascii=False)


def row_json(names: list[str], row) -> str:
    """A row as readable JSON for the quarantine table (exact: numbers as text, bytes as base64)."""
    return json.dumps({n: _jsonable(v) for n, v in zip(names, row)}, ensure_ascii=False, separators=(",", ":"))


def _jsonable(v):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return str(v) if abs(v) >= 2**53 else v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        try:
            return bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(v).decode()}
    if isinstance(v, dict):
        return {str(_jsonable(k)): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return str(v)
