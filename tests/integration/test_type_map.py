"""The type map (macros/flatten/) and the quoting macros (macros/_internal/quote.sql).

The macros are rendered by real dbt: a scratch dbt project installs this
package (packages.yml ``local:``) with the ``chdb`` adapter, and one helper
process (this file run as a script) parses it once and calls a run-operation
per batch of macro calls, collecting the rendered SQL and the compiler
errors.  The SQL is then executed in chDB over tables of DynamoDB JSON
AttributeValues and items, and every result is checked value by value
against a Python oracle (decimal arithmetic) and against hand-written
expectations.  Golden files in tests/golden/ pin the rendered SQL of a few
tricky calls (set UPDATE_GOLDEN=1 to rewrite them).
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import re
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"

# ---------------------------------------------------------------------------
# Rendering through dbt
# ---------------------------------------------------------------------------

RENDER_MACRO = """
{% macro render_cases(cases) %}
  {%- set fns = {
      'attribute_path': dynamodb_cdc.attribute_path,
      'attribute_value': dynamodb_cdc.attribute_value,
      'conversion_failed': dynamodb_cdc.conversion_failed,
      'quote_identifier': dynamodb_cdc.quote_identifier,
      'string_literal': dynamodb_cdc.string_literal,
      '_kv_path': dynamodb_cdc._kv_path,
      'default__attribute_path': dynamodb_cdc.default__attribute_path,
      'default__attribute_value': dynamodb_cdc.default__attribute_value,
      'default__conversion_failed': dynamodb_cdc.default__conversion_failed,
  } -%}
  {%- set out = {} -%}
  {%- for c in cases -%}
    {%- do out.update({c['id']: fns[c['macro']](*c['args']) ~ ''}) -%}
  {%- endfor -%}
  {%- do log('RENDERED ' ~ tojson(out), info=True) -%}
{% endmacro %}
"""


def _render_worker(project_dir: str, batches_path: str, out_path: str) -> None:
    """In a separate process: dbt deps + parse once, then one run-operation per batch."""
    from dbt.cli.main import dbtRunner

    events: list[tuple[str, str]] = []

    def on_event(e) -> None:
        if e.info.name in ("JinjaLogInfo", "InvalidMacroAnnotation") or e.info.level == "error":
            events.append((e.info.name, e.info.msg))

    common = ["--project-dir", project_dir, "--profiles-dir", project_dir, "--quiet"]
    out: dict = {"warnings": [], "batches": {}}
    # deps in its own process: a parse in the process that ran deps does not see the new package.
    deps = subprocess.run([str(Path(sys.executable).parent / "dbt"), "deps"] + common, capture_output=True, text=True)
    if deps.returncode != 0:
        raise SystemExit(f"dbt deps failed:\n{deps.stdout}\n{deps.stderr}")
    res = dbtRunner(callbacks=[on_event]).invoke(["parse"] + common)
    if not res.success:
        raise SystemExit(f"dbt parse failed: {res.exception} {events}")
    out["warnings"] += [msg for name, msg in events if name == "InvalidMacroAnnotation"]
    manifest = res.result
    batches = json.loads(Path(batches_path).read_text())
    for name, cases in batches.items():
        events.clear()
        args = json.dumps({"cases": cases}, ensure_ascii=False)
        res = dbtRunner(manifest=manifest, callbacks=[on_event]).invoke(
            ["run-operation", "render_cases", "--args", args] + common)
        rendered = [msg[len("RENDERED "):] for name_, msg in events
                    if name_ == "JinjaLogInfo" and msg.startswith("RENDERED ")]
        out["batches"][name] = {
            "ok": bool(res.success),
            "sql": json.loads(rendered[0]) if rendered else {},
            "errors": [msg for name_, msg in events if name_ != "JinjaLogInfo"],
        }
    Path(out_path).write_text(json.dumps(out))


def _scratch_project(path: Path) -> None:
    files = {
        "dbt_project.yml": """
            name: type_map_tests
            version: '1.0'
            config-version: 2
            profile: type_map_tests
            macro-paths: [macros]
            model-paths: [models]
            flags:
              validate_macro_args: true
            """,
        "packages.yml": f"""
            packages:
              - local: {json.dumps(str(ROOT))}
            """,
        "profiles.yml": f"""
            type_map_tests:
              target: dev
              outputs:
                dev:
                  type: chdb
                  path: {json.dumps(str(path / '.chdb'))}
                  schema: type_map_tests
                  threads: 1
            """,
        "macros/render_cases.sql": RENDER_MACRO,
    }
    for name, text in files.items():
        f = path / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(textwrap.dedent(text).lstrip())
    (path / "models").mkdir(exist_ok=True)


class Calls:
    """Macro calls to render, grouped in batches (each batch is one run-operation)."""

    def __init__(self):
        self.batches: dict[str, list] = {"main": []}
        self._ids: dict[tuple, str] = {}

    def add(self, macro: str, *args, batch: str = "main") -> str:
        key = (batch, macro, json.dumps(args))
        if key not in self._ids:
            cid = f"c{len(self._ids)}"
            self._ids[key] = cid
            self.batches.setdefault(batch, []).append({"id": cid, "macro": macro, "args": list(args)})
        return self._ids[key]


# ---------------------------------------------------------------------------
# The oracle: what the type map must return, computed independently in Python
# ---------------------------------------------------------------------------

NUMBER_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,6})?")

INT_TYPES = {}
for _bits in (8, 16, 32, 64, 128, 256):
    INT_TYPES[f"Int{_bits}"] = (-(2 ** (_bits - 1)), 2 ** (_bits - 1) - 1)
    INT_TYPES[f"UInt{_bits}"] = (0, 2 ** _bits - 1)

# declared type -> (precision, scale, canonical type name)
DECIMAL_TYPES = {
    "Decimal(18, 2)": (18, 2),
    "Decimal(38, 4)": (38, 4),
    "Decimal(5, 5)": (5, 5),
    "Decimal(10)": (10, 0),
    "Decimal(1, 0)": (1, 0),
    "Decimal32(3)": (9, 3),
    "Decimal64(6)": (18, 6),
    "Decimal128(10)": (38, 10),
    "Decimal256(20)": (76, 20),
    "Decimal(76, 0)": (76, 0),
    "Decimal(76, 76)": (76, 76),
    "Decimal(38, 38)": (38, 38),
    "Nullable(Decimal(9,2))": (9, 2),
}


def normal_form(text: str):
    """(negative, significant digits, exponent) with value = digits * 10**exponent, or None if not a number."""
    if not NUMBER_RE.fullmatch(text):
        return None
    sign, digits, exponent = Decimal(text).as_tuple()
    ds = "".join(map(str, digits)).lstrip("0")
    stripped = ds.rstrip("0")
    exponent += len(ds) - len(stripped)
    if not stripped:
        return (False, "", 0)
    return (bool(sign), stripped, exponent)


def oracle_integer(text: str, ch_type: str):
    nf = normal_form(text)
    if nf is None:
        return None
    neg, ds, exp = nf
    if not ds:
        return 0
    if exp < 0 or len(ds) + exp > 80:
        return None
    value = int(ds) * 10 ** exp * (-1 if neg else 1)
    lo, hi = INT_TYPES[ch_type]
    return value if lo <= value <= hi else None


def oracle_decimal(text: str, precision: int, scale: int):
    nf = normal_form(text)
    if nf is None:
        return None
    neg, ds, exp = nf
    if not ds:
        return Decimal(0)
    fraction_digits = max(0, -exp)
    integer_digits = max(0, len(ds) + exp)
    if fraction_digits > scale or integer_digits > precision - scale:
        return None
    return Decimal((1 if neg else 0, tuple(int(c) for c in ds), exp))


def oracle_float64(text: str):
    if not NUMBER_RE.fullmatch(text):
        return None
    f = float(text)
    return f if math.isfinite(f) else None


def av_of(text_or_obj) -> str:
    return text_or_obj if isinstance(text_or_obj, str) else json.dumps(text_or_obj, ensure_ascii=False)


def expected(kind: str, av_text: str, *, ch_type: str = "", binary: str = "base64"):
    """(value, conversion_failed) the type map must give for one AttributeValue text."""
    if av_text in ("", "null"):
        return None, 0
    av = json.loads(av_text)
    has = lambda tag, py: isinstance(av, dict) and isinstance(av.get(tag), py) and not (  # noqa: E731
        py is int and isinstance(av.get(tag), bool))
    value = None
    # Numbers are read from an N, or from the text of an S (type drift).
    num = av["N"] if has("N", str) else av["S"] if has("S", str) else None
    container = isinstance(av, dict) and (has("M", dict) or any(has(tag, list) for tag in ("L", "SS", "NS", "BS")))
    if kind == "string":
        if has("S", str):
            value = av["S"].encode()
        elif has("N", str):
            value = av["N"].encode()
        elif has("BOOL", bool):
            value = b"true" if av["BOOL"] else b"false"
        elif has("B", str):
            if binary == "base64":
                value = av["B"].encode()
            else:
                try:
                    value = base64.b64decode(av["B"], validate=True)
                except ValueError:
                    value = None
        elif container:
            value = ("json", av)  # the AttributeValue as DynamoDB JSON text
    elif kind == "integer" and num is not None:
        value = oracle_integer(num, ch_type)
    elif kind == "decimal" and num is not None:
        value = oracle_decimal(num, *DECIMAL_TYPES[ch_type])
    elif kind == "float64" and num is not None:
        value = oracle_float64(num)
    elif kind == "bool" and has("BOOL", bool):
        value = av["BOOL"]
    elif kind == "bool" and has("S", str) and av["S"] in ("true", "false"):
        value = av["S"] == "true"
    null_tag = isinstance(av, dict) and "NULL" in av
    return value, int(value is None and not null_tag)


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

HAND_NUMBERS = [
    "0", "-0", "+0", "0.000", "-0.0", "00", "007", "-007", "+5", "12", "12.0", "12.00000", "12.5", "-12.5",
    "1E+2", "1e2", "1E2", "1E+0", "-1E+2", "1.5E+1", "15E-1", "150E-1", "1.20E1", "100E-2", "12e-1", "120e-1",
    "0.5", ".5", "5.", "-.5", "12.50", "1.234", "1.230", "0.01", "0.001", "0.0010",
    "1E-130", "-1E-130", "1E+125", "9.9999999999999999999999999999999999999E+125",
    "-9.9999999999999999999999999999999999999E+125",
    "12345678901234567890123456789012345678", "-12345678901234567890123456789012345678",
    "99999999999999999999999999999999999999", "1234567890123456789012345678901234567.8",
    "0.12345678901234567890123456789012345678", "1.2345678901234567890123456789012345678E+37",
    "1E+38", "1E+76", "1E+77", "1E+78", "9.999999999999999999999999999999999999E+75",
    "1E-76", "1E-77", "0.00000000000000000000000000000000000001",
    "0E+999999", "1E+999999", "1E-999999", "1E+1234567", "0.0E-5",
    "", " 1", "1 ", "1\n", "abc", "1,5", "1.2.3", "--1", "+-1", "NaN", "nan", "Infinity", "inf", "-inf",
    "0x10", "1E", "E5", ".", "-", "+", "1_000", "١٢", "1e+", "1.e5", ".e5",
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001",
    "1.000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
]


def bound_numbers() -> list[str]:
    """Each integer type's min, max, min-1, max+1 in several spellings."""
    out = []
    for lo, hi in INT_TYPES.values():
        for v in (lo, hi, lo - 1, hi + 1):
            s = str(v)
            digits = s.lstrip("-")
            sign = "-" if v < 0 else ""
            out += [s, s + ".0", s + "E+0", f"{sign}{digits[0]}.{digits[1:] or '0'}E+{len(digits) - 1}",
                    f"{sign}{digits}0E-1", f"{sign}00{digits}.000"]
    return out


def random_numbers(n: int = 800, seed: int = 20240607) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        sign = rnd.choice(["", "", "-", "+"])
        lead = "0" * rnd.choice([0, 0, 0, 1, 3])
        digits = "".join(rnd.choice("0123456789") for _ in range(rnd.randint(1, 40)))
        point = rnd.randint(0, len(digits))
        body = digits[:point] + ("." if rnd.random() < 0.6 else "") + digits[point:]
        if body.endswith(".") and rnd.random() < 0.5:
            body += "0" * rnd.randint(1, 4)
        exp = ""
        if rnd.random() < 0.4:
            exp = rnd.choice("eE") + rnd.choice(["", "+", "-"]) + str(rnd.randint(0, 140))
        out.append(sign + lead + body + exp)
    return out


NUMBERS = list(dict.fromkeys(HAND_NUMBERS + bound_numbers() + random_numbers()))

OTHER_AVS = [
    # missing attribute / JSON null / NULL tag
    "", "null", {"NULL": True},
    # strings, including a number-looking one (type drift)
    {"S": "hello"}, {"S": ""}, {"S": "123"}, {"S": "it's \\ \"quoted\" é 日本 😀\n"}, {"S": "true"},
    # booleans
    {"BOOL": True}, {"BOOL": False},
    # binary
    {"B": base64.b64encode(b"\x00\x01\xffbinary").decode()}, {"B": ""}, {"B": "not base64!"},
    {"B": base64.b64encode("é".encode()).decode()},
    # containers and sets: no scalar value
    {"M": {"a": {"S": "x"}}}, {"L": [{"S": "x"}, {"N": "1"}]}, {"SS": ["a", "b"]}, {"NS": ["1", "2"]},
    {"BS": ["AAE="]}, {"M": {}}, {"L": []},
    # malformed AttributeValues
    '{"N":5}', '{"S":1}', '{"BOOL":"true"}', "{}", '{"N":null}', '{"B":1}',
]

# Compact texts next to the fast path's edge: escapes (parsed), a second tag, braces and quotes in the text.
COMPACT_AVS = [
    '{"S":"a\\"b"}', '{"S":"a\\\\b"}', '{"S":"\\u00e9t\\u00e9"}', '{"S":"\\/"}', '{"S":"x","N":"1"}',
    '{"N":"12","S":"x"}', '{"S":"","BOOL":true}', '{"N":"-0.50"}', '{"N":"1e3"}', '{"S":"42"}', '{"N":" 1"}',
    '{"S":"}"}', '{"S":"{\\"S\\":\\"x\\"}"}', '{"S":"日本 😀"}',
]

# declared type -> (kind for the oracle, expected toTypeName of attribute_value)
STRING_TYPES = {
    "String": "Nullable(String)",
    "Nullable(String)": "Nullable(String)",
    "LowCardinality(String)": "LowCardinality(Nullable(String))",
    "LowCardinality(Nullable(String))": "LowCardinality(Nullable(String))",
    " String ": "Nullable(String)",
}
FLOAT_TYPES = {"Float64": "Nullable(Float64)", "Float32": "Nullable(Float32)", "Nullable(Float64)": "Nullable(Float64)"}
BOOL_TYPES = {"Bool": "Nullable(Bool)", "Nullable(Bool)": "Nullable(Bool)", "Boolean": "Nullable(Bool)"}


def all_avs() -> list[str]:
    """Every AttributeValue twice: as json.dumps spaces it, and compact as AWS writes it (which the
    type map cuts the text of an S or N out of without parsing, when it has no escape)."""
    objects = [{"N": n} for n in NUMBERS] + [a for a in OTHER_AVS if not isinstance(a, str)]
    compact = [json.dumps(a, ensure_ascii=False, separators=(",", ":")) for a in objects]
    return [av_of({"N": n}) for n in NUMBERS] + [av_of(a) for a in OTHER_AVS] + compact + COMPACT_AVS


DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
DATETIME_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
                         r"(?:\.([0-9]{1,18}))?(Z|[+-][0-9]{2}:?[0-9]{2})?)?")
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _date(text: str):
    import datetime
    m = DATE_RE.fullmatch(text)
    try:
        return datetime.date(*map(int, m.groups())) if m else None
    except ValueError:
        return None


def oracle_date(text: str, base: str):
    """The date text (as ClickHouse prints it) or None."""
    d = _date(text)
    lo, hi = ("1970-01-01", "2149-06-06") if base == "Date" else ("1900-01-01", "2299-12-31")
    return text if d is not None and lo <= text <= hi else None


def in_range(ticks: int, precision: int, is64: bool) -> bool:
    """DateTime: 0..2^32-1 s; DateTime64(P): 1900-01-01..2299-12-31 within Int64 ticks."""
    if is64:
        lo = max(-2208988800 * 10 ** precision, -(2 ** 63))
        hi = min(10413792000 * 10 ** precision - 1, 2 ** 63 - 1)
    else:
        lo, hi = 0, 2 ** 32 - 1
    return lo <= ticks <= hi


def oracle_datetime(text: str, precision: int, is64: bool):
    """The instant in 10^-precision seconds since the epoch, or None."""
    import datetime
    m = DATETIME_RE.fullmatch(text)
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, off = m.groups()
    day = _date(f"{y}-{mo}-{d}")
    if day is None or not ("1900-01-01" <= f"{y}-{mo}-{d}" <= "2299-12-31"):
        return None
    hh, mi, ss = int(hh or 0), int(mi or 0), int(ss or 0)
    frac = (frac or "").rstrip("0")
    if hh > 23 or mi > 59 or ss > 59 or len(frac) > precision:
        return None
    offset = 0
    if off and off != "Z":
        oh, om = int(off[1:3]), int(off[-2:])
        if oh > 23 or om > 59:
            return None
        offset = (-1 if off[0] == "-" else 1) * (oh * 3600 + om * 60)
    seconds = (day - datetime.date(1970, 1, 1)).days * 86400 + hh * 3600 + mi * 60 + ss - offset
    ticks = seconds * 10 ** precision + int(frac.ljust(precision, "0") or 0)
    return ticks if in_range(ticks, precision, is64) else None


def oracle_uuid(text: str):
    return text.lower() if UUID_RE.fullmatch(text) else None


TEXTS = [
    "", " ", "xyz", "2024-01-02", "2024-02-29", "2023-02-29", "2024-02-30", "2024-13-01", "2024-00-10",
    "2024-01-00", "1970-01-01", "1969-12-31", "2149-06-06", "2149-06-07", "1900-01-01", "1899-12-31",
    "2299-12-31", "2300-01-01", "2024-1-2", "20240102", " 2024-01-02", "2024-01-02 ", "2024-01-02\n",
    "2024-01-02T03:04:05Z", "2024-01-02 03:04:05", "2024-01-02T03:04:05", "2024-01-02T03:04:05.123Z",
    "2024-01-02T03:04:05.120000Z", "2024-01-02T03:04:05.1234Z", "2024-01-02T03:04:05.123456789Z",
    "2024-01-02T03:04:05.1234567891Z", "2024-01-02T03:04:05.000000000000000000Z", "2024-01-02T03:04:05+05:30",
    "2024-01-02T03:04:05-0800", "2024-01-02T00:30:00+01:00", "2024-01-02T03:04:05-00:00", "1970-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z", "1970-01-01T00:59:59+01:00", "1970-01-01T01:00:00+01:00", "2106-02-07T06:28:15Z",
    "2106-02-07T06:28:16Z", "2106-02-07T07:28:15+01:00", "1900-01-01T00:00:00Z", "1900-01-01T00:00:00+00:01",
    "1900-01-01T00:00:00-00:01", "2299-12-31T23:59:59.999999999Z", "2299-12-31T23:59:59-00:01",
    "2262-04-11T23:47:16.854775807Z", "2262-04-11T23:47:16.854775808Z", "1677-09-21T00:12:43.145224192Z",
    "2024-01-02T24:00:00Z", "2024-01-02T23:60:00Z", "2024-12-31T23:59:60Z", "2024-01-02T03:04Z",
    "2024-01-02T03:04:05+24:00", "2024-01-02T03:04:05+23:59", "2024-01-02T03:04:05+05:60", "2024-01-02T03:04:05z",
    "2024-01-02T03:04:05.Z", "2024-01-02t03:04:05Z", "2024-02-30T00:00:00Z",
    "6F9619FF-8B86-D011-B42D-00C04FC964FF", "6f9619ff-8b86-d011-b42d-00c04fc964ff", "6f9619ff8b86d011b42d00c04fc964ff",
    "{6f9619ff-8b86-d011-b42d-00c04fc964ff}", "00000000-0000-0000-0000-000000000000",
    "6f9619ff-8b86-d011-b42d-00c04fc964fg", "6f9619ff-8b86-d011-b42d-00c04fc964f",
]
TEXT_AVS = [av_of({"S": t}) for t in TEXTS] + [
    "", "null", av_of({"NULL": True}), av_of({"N": "1700000000"}), av_of({"N": "20240102"}), av_of({"BOOL": True}),
    av_of({"B": "AAE="}), av_of({"L": [{"S": "2024-01-02"}]}), '{"S":20240102}',
    # epoch seconds in an N (Date, Date32 as the UTC date; DateTime, DateTime64); never for UUID
    av_of({"N": "0"}), av_of({"N": "1767323045.678"}), av_of({"N": "1767323045.6789"}), av_of({"N": "1.5E+9"}),
    av_of({"N": "-1"}), av_of({"N": "4294967295"}), av_of({"N": "4294967296"}), av_of({"N": "-2208988800"}),
    av_of({"N": "-2208988801"}), av_of({"N": "1767323045.123456789"}), av_of({"N": "1767323045.1200"}),
    av_of({"N": "1E+30"}), av_of({"N": "abc"}), av_of({"N": "9223372036.854775807"}),
    av_of({"N": "5662310399"}), av_of({"N": "5662310400"}), av_of({"N": "10413791999"}), av_of({"N": "10413792000"}),
    av_of({"N": "-0.5"}), av_of({"N": "86399.999"}), av_of({"N": "86400"}), av_of({"N": "-86400.0001"}),
    av_of({"N": "1767323045e-3"}), av_of({"N": "-2208988800.5"}),
]
# declared type -> (kind, expected toTypeName, precision)
TEMPORAL_TYPES = {
    "UUID": ("uuid", "Nullable(UUID)", None),
    "Date": ("date", "Nullable(Date)", None),
    "Date32": ("date", "Nullable(Date32)", None),
    "Nullable(Date)": ("date", "Nullable(Date)", None),
    "DateTime": ("datetime", "Nullable(DateTime)", 0),
    "DateTime('UTC')": ("datetime", "Nullable(DateTime('UTC'))", 0),
    "DateTime64(3)": ("datetime64", "Nullable(DateTime64(3))", 3),
    "DateTime64(3, 'UTC')": ("datetime64", "Nullable(DateTime64(3, 'UTC'))", 3),
    " DateTime64( 6 , 'Europe/Berlin' ) ": ("datetime64", "Nullable(DateTime64(6, 'Europe/Berlin'))", 6),
    "DateTime64(9, 'Asia/Kolkata')": ("datetime64", "Nullable(DateTime64(9, 'Asia/Kolkata'))", 9),
    "DateTime64(0)": ("datetime64", "Nullable(DateTime64(0))", 0),
    "LowCardinality(Nullable(DateTime64(2)))": ("datetime64", "Nullable(DateTime64(2))", 2),
}


def expected_temporal(kind: str, base: str, precision, av_text: str):
    if av_text in ("", "null"):
        return None, 0
    av = json.loads(av_text)
    value = None
    if isinstance(av.get("S"), str):
        text = av["S"]
        if kind == "uuid":
            value = oracle_uuid(text)
        elif kind == "date":
            value = oracle_date(text, base)
        else:
            value = oracle_datetime(text, precision, kind == "datetime64")
    elif isinstance(av.get("N"), str) and kind in ("datetime", "datetime64"):
        value = oracle_epoch(av["N"], precision, kind == "datetime64")
    elif isinstance(av.get("N"), str) and kind == "date":
        value = oracle_epoch_date(av["N"], base)
    return value, int(value is None and "NULL" not in av)


def oracle_epoch(text: str, precision: int, is64: bool):
    """Epoch seconds (an N) as 10^-precision seconds, exactly, or None."""
    form = normal_form(text)
    if form is None:
        return None
    negative, digits, exponent = form  # value = digits * 10**exponent seconds
    if digits and exponent + precision < 0:
        return None  # more fractional digits than the type keeps
    if digits and len(digits) + exponent > 30:
        return None  # far out of any range (and no huge integers)
    ticks = int(digits) * 10 ** (exponent + precision) * (-1 if negative else 1) if digits else 0
    return ticks if in_range(ticks, precision, is64) else None


def oracle_epoch_date(text: str, base: str):
    """Epoch seconds (an N) as the UTC date of that instant (text, as ClickHouse prints it), or None."""
    import datetime
    from fractions import Fraction

    form = normal_form(text)
    if form is None:
        return None
    negative, digits, exponent = form
    if digits and len(digits) + exponent > 30:
        return None
    value = Fraction(int(digits or "0")) * Fraction(10) ** exponent * (-1 if negative else 1)
    seconds = value.numerator // value.denominator  # rounded down
    lo, hi = (0, 5662310399) if base == "Date" else (-2208988800, 10413791999)
    if not lo <= seconds <= hi:
        return None
    return (datetime.date(1970, 1, 1) + datetime.timedelta(days=seconds // 86400)).isoformat()


# Hostile attribute names: each maps to a distinct value in ITEM.
HOSTILE_NAMES = [
    "a.b", "it's", "back\\slash", 'dq"x', "back`tick", " spaced name ", "é", "日本語", "emoji😀",
    "new\nline", "tab\tx", "cr\rx", "') OR 1=1 --", "\\'", "'", "\\", "`", "M", "N", "S", "a'.b\"c`d\\e f",
    "nul\x00byte", "$x", "{x}", "{{ x }}", "%s",
]
ITEM = {name: {"S": f"value {i}"} for i, name in enumerate(HOSTILE_NAMES)}
ITEM["nested"] = {"M": {"b.c": {"M": {"d'e": {"N": "42"}, "back`\\": {"BOOL": True}}}, "list": {"L": [{"S": "x"}]}}}
ITEM["a"] = {"M": {"b": {"S": "a then b, not a.b"}}}
ITEM["lines"] = {"L": [{"M": {"sku": {"S": "A-1"}}}, {"M": {"sku": {"S": "B-2"}}}]}
PATH_CASES = (
    [([name], ITEM[name]) for name in HOSTILE_NAMES]
    + [(name, ITEM[name]) for name in HOSTILE_NAMES[:6]]  # a string is one attribute name
    + [
        (["nested", "b.c", "d'e"], {"N": "42"}),
        (["nested", "b.c", "back`\\"], {"BOOL": True}),
        (["nested", "b.c"], ITEM["nested"]["M"]["b.c"]),
        (["nested", "list", 0], {"S": "x"}),  # a list position: 0 is the first element
        (["nested", "list", -1], {"S": "x"}),  # -1 the last
        (["nested", "list", 1], None),
        (["nested", "list", "0"], None),  # a string is a map key, never a position
        (["lines", 1, "sku"], {"S": "B-2"}),
        (["a", "b"], {"S": "a then b, not a.b"}),
        ("a.b", ITEM["a.b"]),
        (["nested", "list", "0"], None),  # L is not a map
        (["nested", "missing"], None),
        (["nope"], None),
        (["a.b", "x"], None),  # S is not a map
        (["nested", "M"], None),  # 'M' is the tag, never a key on the path
    ]
)


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------

pytest.importorskip("chdb", reason="chDB is not installed (pip install 'clickhouse-connect[chdb]')")
pytest.importorskip("dbt.adapters.chdb", reason="the chdb dbt adapter is not installed (pip install ./adapter)")

from dynamodb_cdc.connection import open_chdb_client  # noqa: E402

AV = "av"  # the AttributeValue column in the test tables
ITEM_COL = "item"
KV_COL = "item_kv"  # the item as the changes model holds it: Array(Tuple(name, AttributeValue JSON))

GOLDEN_CALLS = {
    "attribute_path_nested_quoting.sql": ("attribute_path", "_item", ["shipping", "it's", "a.b\\c`d", "日本"]),
    "attribute_path_list_position.sql": ("attribute_path", "_item", ["order lines", 0, "sku's"]),
    "attribute_value_array_decimal.sql": ("attribute_value", "_av_1", "Array(Decimal(38, 2))"),
    "attribute_value_map_nullable_string.sql": ("attribute_value", "_av_1", "Map(String, Nullable(String))"),
    "conversion_failed_array_int64.sql": ("conversion_failed", "_av_1", "Array(Int64)"),
    "attribute_value_decimal_18_2.sql": ("attribute_value", "_av_1", "Decimal(18, 2)"),
    "attribute_value_uint256.sql": ("attribute_value", "_av_1", "UInt256"),
    "attribute_value_lowcardinality_string_bytes.sql": ("attribute_value", "_av_1", "LowCardinality(String)", "bytes"),
    "attribute_value_datetime64_3_utc.sql": ("attribute_value", "_av_1", "DateTime64(3, 'UTC')"),
    "conversion_failed_int32.sql": ("conversion_failed", "JSONExtractRaw(_item, 'n')", "Int32"),
    "quote_identifier.sql": ("quote_identifier", "we`ird\\ name's"),
    "string_literal.sql": ("string_literal", "it's a \\ back`slash\nline"),
}

ERROR_CALLS = {
    "unsupported_ipv4": (("attribute_value", AV, "IPv4"), ["'IPv4'", "not supported yet"]),
    "unsupported_datetime64_tz_quotes": (("attribute_value", AV, 'DateTime64(3, "UTC")'),
                                         ["'DateTime64(3, \"UTC\")'", "not supported yet"]),
    "nullable_array": (("attribute_value", AV, "Nullable(Array(Int64))"), ["'Nullable(Array(Int64))'",
                                                                           "no Nullable or LowCardinality Array"]),
    "nested_array": (("attribute_value", AV, "Array(Array(Int64))"), ["nested collections are not supported"]),
    "map_int_key": (("conversion_failed", AV, "Map(Int64, String)"), ["'Map(Int64, String)'", "not supported yet"]),
    "array_of_unsupported": (("attribute_value", AV, "Array(FixedString(3))"), ["'FixedString(3)'", "not supported yet"]),
    "path_starts_with_position": (("attribute_path", ITEM_COL, [0, "a"]), ["starts with the list position 0"]),
    "unsupported_fixedstring": (("attribute_value", AV, "FixedString(4)"), ["'FixedString(4)'", "not supported yet"]),
    "unsupported_datetime64_precision": (("attribute_value", AV, "DateTime64(10)"), ["'DateTime64(10)'",
                                                                                    "not supported yet"]),
    "bad_decimal": (("attribute_value", AV, "Decimal(80, 2)"), ["Decimal(80, 2)", "precision must be 1 to 76"]),
    "bad_decimal_scale": (("attribute_value", AV, "Decimal(5, 6)"), ["Decimal(5, 6)", "scale 0 to precision"]),
    "bad_binary": (("attribute_value", AV, "String", "hex"), ["binary must be 'base64'", "got 'hex'"]),
    "empty_path": (("attribute_path", ITEM_COL, []), ["path must be an attribute name or a non-empty list"]),
    "empty_name": (("attribute_path", ITEM_COL, ["a", ""]), ["empty or invalid attribute name at position 1"]),
    "yaml_boolean_name": (("attribute_path", ITEM_COL, ["a", True]), ["boolean or a float", "quote the attribute name"]),
    "default_attribute_path": (("default__attribute_path", ITEM_COL, ["a"]), ["supports only ClickHouse"]),
    "default_attribute_value": (("default__attribute_value", AV, "Int32"), ["supports only ClickHouse"]),
    "default_conversion_failed": (("default__conversion_failed", AV, "Int32"), ["supports only ClickHouse"]),
    "empty_identifier": (("quote_identifier", ""), ["an identifier cannot be empty"]),
}


def _value_types():
    types = [(t, "integer", f"Nullable({t})") for t in INT_TYPES]
    types += [("Nullable(Int64)", "integer", "Nullable(Int64)"), ("LowCardinality(UInt8)", "integer",
                                                                  "Nullable(UInt8)")]
    types += [(t, "decimal", None) for t in DECIMAL_TYPES]
    types += [(t, "string", n) for t, n in STRING_TYPES.items()]
    types += [(t, "float64" if "64" in t else "float32", n) for t, n in FLOAT_TYPES.items()]
    types += [(t, "bool", n) for t, n in BOOL_TYPES.items()]
    return types


# Declared types used by the hand-written tests: (type, binary)
EXTRA_TYPES = [("String", "bytes"), ("Int64", "bytes"), ("Decimal(18, 2)", None), ("Bool", None)]
COLLECTION_TYPES = [
    ("Array(Int64)", None), ("Array(Nullable(Int64))", None), ("Array(String)", None), ("Array(String)", "bytes"),
    ("Array(Nullable(String))", None),
    ("Array(Decimal(38, 2))", None), ("Array(LowCardinality(String))", None), ("Array(Bool)", None),
    ("Array(UInt256)", None), ("Array(DateTime64(3, 'UTC'))", None), ("Map(String, Int64)", None),
    ("Map(String, Nullable(String))", None), ("Map(String, Decimal(76, 38))", None), ("Map(String, String)", None),
]


def _oracle_key(ch_type: str) -> str:
    return {"Nullable(Int64)": "Int64", "LowCardinality(UInt8)": "UInt8"}.get(ch_type, ch_type)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Renders every macro call of this module in one dbt process; returns {'calls', 'batches', 'warnings'}."""
    calls = Calls()
    for ch_type, _, _ in _value_types():
        calls.add("attribute_value", AV, ch_type)
        calls.add("conversion_failed", AV, ch_type)
    for ch_type in TEMPORAL_TYPES:
        calls.add("attribute_value", AV, ch_type)
        calls.add("conversion_failed", AV, ch_type)
    for ch_type in STRING_TYPES:
        calls.add("attribute_value", AV, ch_type, "bytes")
        calls.add("conversion_failed", AV, ch_type, "bytes")
    for ch_type, binary in [(t, None) for t, _, _ in SPOT_CHECKS] + EXTRA_TYPES + COLLECTION_TYPES:
        extra = (binary,) if binary else ()
        calls.add("attribute_value", AV, ch_type, *extra)
        calls.add("conversion_failed", AV, ch_type, *extra)
    calls.add("attribute_value", "_av", "Int32")
    calls.add("conversion_failed", "_av", "UInt8")
    for path, _ in PATH_CASES:
        calls.add("attribute_path", ITEM_COL, path)
        calls.add("_kv_path", KV_COL, path)
    for name in HOSTILE_NAMES + ["plain"]:
        calls.add("quote_identifier", name)
        calls.add("string_literal", name)
    for name, call in GOLDEN_CALLS.items():
        calls.add(*call)
    for name, (call, _) in ERROR_CALLS.items():
        calls.add(*call, batch=name)

    project = tmp_path_factory.mktemp("type_map_project")
    _scratch_project(project)
    batches_file = project / "batches.json"
    batches_file.write_text(json.dumps(calls.batches, ensure_ascii=False))
    out_file = project / "rendered.json"
    env = dict(os.environ, DO_NOT_TRACK="1", DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    proc = subprocess.run([sys.executable, __file__, str(project), str(batches_file), str(out_file)],
                          cwd=project, env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or not out_file.exists():
        pytest.fail(f"rendering through dbt failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    result = json.loads(out_file.read_text())
    main = result["batches"]["main"]
    assert main["ok"], main["errors"]
    sql = main["sql"]

    def get(macro, *args):
        return sql[calls._ids[("main", macro, json.dumps(args))]]

    result["get"] = get
    return result


@pytest.fixture(scope="module")
def ch(tmp_path_factory):
    """A chDB session with the test tables: avs(id, av) and items(id, item)."""
    client = open_chdb_client(str(tmp_path_factory.mktemp("type_map_chdb")))
    client.command("CREATE TABLE avs (id UInt32, av String) ENGINE = MergeTree ORDER BY id")
    client.insert("avs", [[i, a] for i, a in enumerate(all_avs())], column_names=["id", "av"])
    client.command("CREATE TABLE texts (id UInt32, av String) ENGINE = MergeTree ORDER BY id")
    client.insert("texts", [[i, a] for i, a in enumerate(TEXT_AVS)], column_names=["id", "av"])
    client.command("CREATE TABLE items (id UInt32, item String) ENGINE = MergeTree ORDER BY id")
    client.insert("items", [[0, json.dumps(ITEM, ensure_ascii=False)], [1, json.dumps(ITEM, ensure_ascii=True)]],
                  column_names=["id", "item"])
    yield client
    client.close()


def _run_type(ch, rendered, ch_type, binary=None):
    """Rows (id, value, hex(value) or '', toTypeName, failed) of one declared type over all AttributeValues."""
    extra = (binary,) if binary else ()
    value = rendered["get"]("attribute_value", AV, ch_type, *extra)
    failed = rendered["get"]("conversion_failed", AV, ch_type, *extra)
    # Strings are compared as bytes (hex): decoded B values need not be UTF-8.
    plain = "NULL" if "String" in ch_type else "v"
    return ch.query(
        f"SELECT id, {plain}, isNull(v), hex(toString(v)), toTypeName(v), {failed} FROM "
        f"(SELECT id, {value} AS v, av FROM avs) ORDER BY id"
    ).result_rows


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("ch_type,kind,type_name", _value_types(), ids=[t for t, _, _ in _value_types()])
def test_type_map_value_by_value(ch, rendered, ch_type, kind, type_name):
    avs = all_avs()
    rows = _run_type(ch, rendered, ch_type)
    assert len(rows) == len(avs)
    if kind == "decimal":
        p, s = DECIMAL_TYPES[ch_type]
        base = f"Decimal({p}, {s})"
        type_name = f"Nullable({base})"
    mismatches = []
    for (i, value, is_null, hexed, tname, failed), av in zip(rows, avs):
        assert tname == type_name, (ch_type, tname)
        if kind == "float32":
            exp, exp_failed = expected("float64", av)
            if exp is not None and abs(exp) > 3.4028234663852886e38:
                exp, exp_failed = None, 1
            ok = (value is None) == (exp is None) and (exp is None or math.isclose(value, exp, rel_tol=1e-7,
                                                                                   abs_tol=1e-44))
        else:
            exp, exp_failed = expected(kind, av, ch_type=_oracle_key(ch_type))
            if kind == "string":
                ok = (exp is None and is_null) or (exp is not None and not is_null and same_bytes(hexed, exp))
            elif kind == "float64":
                ok = (value is None) == (exp is None) and (exp is None or math.isclose(value, exp, rel_tol=1e-15))
            else:
                ok = (value is None and exp is None) or (value is not None and exp is not None and value == exp
                                                         and type(value) is type(exp))
        if not ok or failed != exp_failed:
            mismatches.append((av, value, exp, failed, exp_failed))
    assert not mismatches, f"{len(mismatches)} mismatches for {ch_type}, first ones: {mismatches[:10]}"


@pytest.mark.parametrize("ch_type", list(TEMPORAL_TYPES))
def test_temporal_and_uuid_value_by_value(ch, rendered, ch_type):
    kind, type_name, precision = TEMPORAL_TYPES[ch_type]
    base = type_name[len("Nullable("):-1].split("(")[0]
    value = rendered["get"]("attribute_value", AV, ch_type)
    failed = rendered["get"]("conversion_failed", AV, ch_type)
    # Compared as text (dates, UUIDs) or as the exact instant in 10^-P seconds (date-times).
    as_compared = {"uuid": "toString(assumeNotNull(v))", "date": "toString(assumeNotNull(v))",
                   "datetime": "toString(toUnixTimestamp(assumeNotNull(v)))",
                   "datetime64": "toString(reinterpretAsInt64(assumeNotNull(v)))"}[kind]
    rows = ch.query(f"SELECT id, if(isNull(v), NULL, {as_compared}), toTypeName(v), {failed} "
                    f"FROM (SELECT id, {value} AS v, av FROM texts) ORDER BY id").result_rows
    assert len(rows) == len(TEXT_AVS)
    mismatches = []
    for (i, got, tname, got_failed), av in zip(rows, TEXT_AVS):
        assert tname == type_name
        exp, exp_failed = expected_temporal(kind, base, precision, av)
        if (None if got is None else (int(got) if kind.startswith("datetime") else got)) != exp or got_failed != exp_failed:
            mismatches.append((av, got, exp, got_failed, exp_failed))
    assert not mismatches, f"{len(mismatches)} mismatches for {ch_type}: {mismatches[:10]}"
    valid = sum(1 for av in TEXT_AVS if expected_temporal(kind, base, precision, av)[0] is not None)
    assert valid >= 2  # the cases do exercise the happy path


@pytest.mark.parametrize("ch_type", list(STRING_TYPES))
def test_binary_bytes(ch, rendered, ch_type):
    avs = all_avs()
    rows = _run_type(ch, rendered, ch_type, "bytes")
    for (i, value, is_null, hexed, tname, failed), av in zip(rows, avs):
        exp, exp_failed = expected("string", av, binary="bytes")
        assert (exp is None and is_null) or (not is_null and same_bytes(hexed, exp)), (av, hexed, exp)
        assert failed == exp_failed, av


def same_bytes(hexed: str, exp) -> bool:
    """A String value (hex) against the oracle: bytes, or ("json", AttributeValue) for JSON text."""
    got = bytes.fromhex(hexed)
    if isinstance(exp, tuple):
        return json.loads(got) == exp[1]
    return got == exp


def _one(ch, rendered, ch_type, av_obj, binary=None):
    extra = (binary,) if binary else ()
    value = rendered["get"]("attribute_value", AV, ch_type, *extra)
    failed = rendered["get"]("conversion_failed", AV, ch_type, *extra)
    [[v, f]] = ch.query(f"SELECT {value}, {failed} FROM (SELECT {{a:String}} AS av)",
                        parameters={"a": av_of(av_obj)}).result_rows
    return v, f


# Hand-written expectations, independent of the oracle: (declared type, N text, value or None).
SPOT_CHECKS = [
    ("Int32", "12.0", 12), ("Int32", "1E+2", 100), ("Int32", "1.5E+1", 15), ("Int32", "15E-1", None),
    ("Int32", "007", 7), ("Int32", "-0", 0), ("Int32", "0.000", 0), ("Int32", "12.5", None),
    ("Int32", "2147483647", 2147483647), ("Int32", "2147483648", None), ("Int32", "-2147483648", -2147483648),
    ("Int32", "-2147483649", None), ("Int32", "2.147483647E+9", 2147483647), ("Int32", "1E-130", None),
    ("Int8", "127", 127), ("Int8", "128", None), ("Int8", "-128", -128), ("Int8", "-129", None),
    ("UInt8", "255", 255), ("UInt8", "256", None), ("UInt8", "-1", None), ("UInt8", "-0", 0),
    ("UInt64", "18446744073709551615", 18446744073709551615), ("UInt64", "18446744073709551616", None),
    ("Int64", "-9223372036854775808", -9223372036854775808), ("Int64", "9223372036854775808", None),
    ("Int128", "170141183460469231731687303715884105727", 2 ** 127 - 1),
    ("Int128", "170141183460469231731687303715884105728", None),
    ("Int128", "-170141183460469231731687303715884105728", -(2 ** 127)),
    ("Int128", "99999999999999999999999999999999999999", 10 ** 38 - 1),
    ("UInt256", "115792089237316195423570985008687907853269984665640564039457584007913129639935", 2 ** 256 - 1),
    ("UInt256", "115792089237316195423570985008687907853269984665640564039457584007913129639936", None),
    ("UInt256", "1E+77", 10 ** 77), ("UInt256", "1E+78", None), ("Int256", "1E+76", 10 ** 76),
    ("Int256", "1E+77", None), ("Int256", "-5.7896044618658097711785492504343953926634992332820282019728792003956564819968E+76",
                                 -(2 ** 255)),
    ("Int64", "9.9999999999999999999999999999999999999E+125", None),
    ("Decimal(18, 2)", "12.5", Decimal("12.50")), ("Decimal(18, 2)", "1.234", None),
    ("Decimal(18, 2)", "1.230", Decimal("1.23")), ("Decimal(18, 2)", "1E+2", Decimal("100")),
    ("Decimal(18, 2)", "9999999999999999.99", Decimal("9999999999999999.99")),
    ("Decimal(18, 2)", "10000000000000000", None), ("Decimal(18, 2)", "-0.001", None),
    ("Decimal(18, 2)", "-0.00", Decimal(0)), ("Decimal(18, 2)", "1E-130", None),
    ("Decimal(10)", "12.5", None), ("Decimal(10)", "12.0", Decimal(12)),
    ("Decimal(38, 0)", "12345678901234567890123456789012345678", Decimal("12345678901234567890123456789012345678")),
    ("Decimal(38, 0)", "123456789012345678901234567890123456789", None),
    ("Decimal(38, 38)", "0.12345678901234567890123456789012345678", Decimal("0.12345678901234567890123456789012345678")),
    ("Decimal(76, 76)", "1E-76", Decimal("1E-76")), ("Decimal(76, 76)", "1E-77", None),
    ("Decimal256(20)", "9.9999999999999999999999999999999999999E+55",
     Decimal("99999999999999999999999999999999999999000000000000000000")),
    ("Decimal256(20)", "9.9999999999999999999999999999999999999E+56", None),
    ("Float64", "1.5", 1.5), ("Float64", "1E+2", 100.0), ("Float64", "9.9999999999999999999999999999999999999E+125", 1e126),
    ("Float64", "1E-130", 1e-130), ("Float64", "NaN", None), ("Float64", "abc", None), ("Float64", "inf", None),
    ("Float32", "1.5", 1.5), ("Float32", "1E+39", None), ("Float32", "1E-130", 0.0),
]


@pytest.mark.parametrize("ch_type,text,value", SPOT_CHECKS, ids=[f"{t}:{n}" for t, n, _ in SPOT_CHECKS])
def test_spot_checks(ch, rendered, ch_type, text, value):
    v, failed = _one(ch, rendered, ch_type, {"N": text})
    assert v == value and type(v) is type(value)
    assert failed == (value is None)


def test_the_models_never_pass_the_type_map_text_that_is_not_json(ch, rendered):
    """The type map cuts a compact S or N out without parsing, which is exact for valid JSON.  The
    models take every AttributeValue from ClickHouse's JSON parser: a line holding a raw control
    character (not valid JSON) yields no attribute at all, so no such text reaches the type map."""
    for text in ("a\x01b", "1\x1f", "a\tb", "\x00"):
        line = f'{{"Item":{{"pk":{{"S":"k"}},"a":{{"S":"{text}"}}}}}}'
        [[item, valid]] = ch.query("SELECT JSONExtractKeysAndValuesRaw({l:String}, 'Item'), isValidJSON({l:String})",
                                   parameters={"l": line}).result_rows
        assert item == [] and valid == 0, (text, item)
    good = '{"Item":{"pk":{"S":"k"},"a":{"S":"a b"}}}'
    [[item]] = ch.query("SELECT JSONExtractKeysAndValuesRaw({l:String}, 'Item')", parameters={"l": good}).result_rows
    assert item == [("pk", '{"S":"k"}'), ("a", '{"S":"a b"}')]  # compact, as the line has it
    assert _one(ch, rendered, "String", item[1][1]) == ("a b", 0)


def test_tags_and_type_drift(ch, rendered):
    # One attribute holding S in one row and N in another, declared String and Int64.
    assert _one(ch, rendered, "String", {"S": "abc"}) == ("abc", 0)
    assert _one(ch, rendered, "String", {"N": "0012.50"}) == ("0012.50", 0)  # the number text as written
    assert _one(ch, rendered, "Int64", {"S": "12"}) == (12, 0)  # numbers from whichever of N or S is there
    assert _one(ch, rendered, "Int64", {"S": " 12"}) == (None, 1)  # with the same exact rules
    assert _one(ch, rendered, "Decimal(18, 2)", {"S": "1.5"}) == (Decimal("1.50"), 0)
    assert _one(ch, rendered, "Int64", {"N": "12"}) == (12, 0)
    assert _one(ch, rendered, "String", {"BOOL": False}) == ("false", 0)
    assert _one(ch, rendered, "Bool", {"BOOL": True}) == (True, 0)
    assert _one(ch, rendered, "Bool", {"N": "1"}) == (None, 1)
    assert _one(ch, rendered, "Bool", {"S": "true"}) == (True, 0)
    assert _one(ch, rendered, "Bool", {"S": "True"}) == (None, 1)
    # NULL tag and missing attribute: NULL, not a failure.
    for t in ("String", "Int64", "Decimal(18, 2)", "Float64", "Bool"):
        assert _one(ch, rendered, t, {"NULL": True}) == (None, 0)
        assert _one(ch, rendered, t, "") == (None, 0)
        if t != "String":
            assert _one(ch, rendered, t, {"M": {"a": {"S": "x"}}}) == (None, 1)
            assert _one(ch, rendered, t, {"SS": ["a"]}) == (None, 1)
    # String keeps maps, lists and sets whole, as DynamoDB JSON text (numbers stay exact strings).
    for av in ({"M": {"a": {"N": "1.50"}, "b": {"L": [{"NULL": True}]}}}, {"L": []}, {"SS": ["b", "a"]},
               {"NS": ["12345678901234567890123456789012345678"]}, {"BS": ["AAE="]}):
        v, f = _one(ch, rendered, "String", av)
        assert json.loads(v) == av and f == 0
    # B: the base64 text, or the decoded bytes; invalid base64 is a failure with bytes only.
    b64 = base64.b64encode(b"hi\n").decode()
    assert _one(ch, rendered, "String", {"B": b64}) == (b64, 0)
    assert _one(ch, rendered, "String", {"B": b64}, "bytes") == ("hi\n", 0)
    assert _one(ch, rendered, "String", {"B": "%%%"}) == ("%%%", 0)
    assert _one(ch, rendered, "String", {"B": "%%%"}, "bytes") == (None, 1)
    assert _one(ch, rendered, "Int64", {"N": "5"}, "bytes") == (5, 0)


def _collection(ch, rendered, ch_type, av_obj, binary=None):
    extra = (binary,) if binary else ()
    value = rendered["get"]("attribute_value", AV, ch_type, *extra)
    failed = rendered["get"]("conversion_failed", AV, ch_type, *extra)
    [[v, t, f]] = ch.query(f"SELECT {value} AS v, toTypeName(v), {failed} FROM (SELECT {{a:String}} AS av)",
                           parameters={"a": av_of(av_obj)}).result_rows
    return v, t, f


BIG = "12345678901234567890123456789012345678"
COLLECTION_CASES = [
    # (declared type, AttributeValue, value, conversion_failed)
    ("Array(Int64)", {"NS": ["3", "-1", "2E+1"]}, [-1, 3, 20], 0),  # a set: sorted
    ("Array(Int64)", {"L": [{"N": "3"}, {"N": "1"}, {"N": "3"}]}, [3, 1, 3], 0),  # a list: as is
    ("Array(Int64)", {"SS": ["2", "1"]}, [1, 2], 0),  # numbers in strings (type drift)
    ("Array(Int64)", {"L": [{"N": "1"}, {"S": "x"}]}, [], 1),  # one element lost: the whole value
    ("Array(Int64)", {"L": [{"N": "1"}, {"NULL": True}]}, [], 1),  # NULL element, T not Nullable
    ("Array(Int64)", {"NS": ["1", "9223372036854775808"]}, [], 1),  # overflow
    ("Array(Int64)", {"NS": ["1.5"]}, [], 1),
    ("Array(Int64)", {"L": []}, [], 0), ("Array(Int64)", {"NULL": True}, [], 0), ("Array(Int64)", "", [], 0),
    ("Array(Int64)", {"N": "1"}, [], 1), ("Array(Int64)", {"M": {}}, [], 1),
    ("Array(Nullable(Int64))", {"L": [{"N": "1"}, {"NULL": True}]}, [1, None], 0),
    ("Array(Nullable(Int64))", {"L": [{"N": "1"}, {"S": "x"}]}, [], 1),
    ("Array(String)", {"SS": ["b", "a", "é", ""]}, ["", "a", "b", "é"], 0),
    ("Array(String)", {"L": [{"S": "x"}, {"N": "1.50"}, {"BOOL": True}, {"B": "AAE="}]}, ["x", "1.50", "true", "AAE="], 0),
    ("Array(String)", {"L": [{"M": {"a": {"S": "y"}}}]}, ['{"M":{"a":{"S":"y"}}}'], 0),
    ("Array(String)", {"NS": ["1.50", "-2"]}, ["-2", "1.50"], 0),  # sorted as the declared type: text
    ("Array(String)", {"BS": ["AQ==", "AA=="]}, ["AA==", "AQ=="], 0),
    ("Array(Decimal(38, 2))", {"NS": ["1.5", "-0.25", "-0.250"]}, [Decimal("-0.25"), Decimal("-0.25"), Decimal("1.50")], 0),
    ("Array(Decimal(38, 2))", {"NS": ["0.001"]}, [], 1),
    ("Array(LowCardinality(String))", {"SS": ["z", "y"]}, ["y", "z"], 0),
    ("Array(Bool)", {"L": [{"BOOL": True}, {"BOOL": False}]}, [True, False], 0),
    ("Array(UInt256)", {"NS": [str(2 ** 256 - 1), "0"]}, [0, 2 ** 256 - 1], 0),
    ("Array(UInt256)", {"NS": [str(2 ** 256)]}, [], 1),
    ("Map(String, Int64)", {"M": {"a": {"N": "1"}, "b.c": {"N": "2"}, "it's": {"N": "-3"}}}, {"a": 1, "b.c": 2, "it's": -3}, 0),
    ("Map(String, Int64)", {"M": {"a": {"N": "1"}, "b": {"S": "x"}}}, {}, 1),
    ("Map(String, Int64)", {"M": {}}, {}, 0), ("Map(String, Int64)", "", {}, 0), ("Map(String, Int64)", {"L": []}, {}, 1),
    ("Map(String, Nullable(String))", {"M": {"a": {"NULL": True}, "b": {"S": "x"}}}, {"a": None, "b": "x"}, 0),
    ("Map(String, Decimal(76, 38))", {"M": {"max": {"N": BIG}, "min": {"N": "-" + BIG}, "tiny": {"N": "1E-38"}}},
     {"max": Decimal(BIG), "min": Decimal("-" + BIG), "tiny": Decimal("1E-38")}, 0),
    ("Map(String, String)", {"M": {"日本": {"S": "語"}, "n": {"N": "1"}, "m": {"M": {}}}}, {"日本": "語", "n": "1", "m": '{"M":{}}'}, 0),
]


@pytest.mark.parametrize("ch_type,av,value,failed", COLLECTION_CASES,
                         ids=[f"{t}:{json.dumps(a, ensure_ascii=False)}"[:80] for t, a, _, _ in COLLECTION_CASES])
def test_collections(ch, rendered, ch_type, av, value, failed):
    v, type_name, f = _collection(ch, rendered, ch_type, av)
    assert (v, f) == (value, failed)
    assert [type(x) for x in (v.values() if isinstance(v, dict) else v)] == [
        type(x) for x in (value.values() if isinstance(value, dict) else value)]
    assert type_name == ch_type



STRING_ARRAYS = [
    # (declared type, AttributeValue as AWS writes it (compact), value): an L of S and an SS are cut
    # apart as text when no element has an escape; every other form is parsed.  Both must agree.
    ("Array(String)", '{"L":[{"S":"b"},{"S":"a b"},{"S":"b"}]}', ["b", "a b", "b"]),
    ("Array(String)", '{"L":[{"S":"x"}]}', ["x"]),
    ("Array(String)", '{"L":[{"S":""},{"S":"é☃"}]}', ["", "é☃"]),
    ("Array(String)", '{"SS":["b","a","é",""]}', ["", "a", "b", "é"]),
    ("Array(String)", '{"SS":["z"]}', ["z"]),
    ("Array(String)", '{"L":[{"S":"say \\"hi\\""},{"S":"a\\\\b"}]}', ['say "hi"', "a\\b"]),  # escapes: parsed
    ("Array(String)", '{"SS":["\\u00e9","x\\ny"]}', ["x\ny", "é"]),
    ("Array(String)", '{"L":[{"S":"x"},{"N":"1.50"}]}', ["x", "1.50"]),  # not all S: parsed
    ("Array(String)", '{"L":[{"S":"x"},{"S":"},{\\"S\\":\\""}]}', ["x", '},{"S":"']),  # the separator as text
    ("Array(String)", '{"L":[]}', []),
    ("Array(Nullable(String))", '{"L":[{"S":"x"},{"NULL":true}]}', ["x", None]),
    ("Array(Nullable(String))", '{"L":[{"S":"x"},{"S":"y"}]}', ["x", "y"]),
    ("Array(LowCardinality(String))", '{"SS":["z","y"]}', ["y", "z"]),
]


@pytest.mark.parametrize("ch_type,av,value", STRING_ARRAYS, ids=[f"{t}:{a}"[:80] for t, a, _ in STRING_ARRAYS])
def test_collections_of_strings_as_aws_writes_them(ch, rendered, ch_type, av, value):
    """The compact text and the same AttributeValue spaced out (always parsed) give the same value."""
    compact = _collection(ch, rendered, ch_type, av)
    spaced = _collection(ch, rendered, ch_type, json.loads(av))
    assert compact[0] == value and compact == spaced


def test_collections_of_binary_and_datetimes(ch, rendered):
    value = rendered["get"]("attribute_value", AV, "Array(String)", "bytes")
    [[hexed]] = ch.query(f"SELECT arrayMap(x -> hex(x), {value}) FROM (SELECT {{a:String}} AS av)",
                         parameters={"a": av_of({"BS": ["/w==", "AAE="]})}).result_rows
    assert hexed == ["0001", "FF"]  # decoded, then sorted by bytes
    v, _, f = _collection(ch, rendered, "Array(DateTime64(3, 'UTC'))", {"L": [{"S": "2026-01-02T03:04:05.678Z"},
                                                                             {"N": "1767323045.5"}]})
    assert f == 0 and [x.replace(tzinfo=None).isoformat() for x in v] == ["2026-01-02T03:04:05.678000", "2026-01-02T03:04:05.500000"]


def test_attribute_path_hostile_names_and_nesting(ch, rendered):
    exprs = [rendered["get"]("attribute_path", ITEM_COL, path) for path, _ in PATH_CASES]
    select = ", ".join(f"{e} AS p{i}" for i, e in enumerate(exprs))
    rows = ch.query(f"SELECT {select} FROM items ORDER BY id").result_rows
    assert len(rows) == 2  # the item as raw UTF-8 and with \\u escapes
    for row in rows:
        for (path, want), got in zip(PATH_CASES, row):
            if want is None:
                assert got == "", path
            else:
                assert json.loads(got) == want, path
    # The changes model's lookup in the item parsed once (JSONExtractKeysAndValuesRaw) finds the same.
    kv = [rendered["get"]("_kv_path", KV_COL, path) for path, _ in PATH_CASES]
    select = ", ".join(f"{e} AS p{i}" for i, e in enumerate(kv))
    kv_rows = ch.query(f"SELECT {select} FROM (SELECT id, JSONExtractKeysAndValuesRaw(item) AS {KV_COL} FROM items) "
                       f"ORDER BY id").result_rows
    assert kv_rows == rows
    # A string path is one attribute name, never split on dots.
    assert rendered["get"]("attribute_path", ITEM_COL, "a.b") == "JSONExtractRaw(item, 'a.b')"
    assert rendered["get"]("attribute_path", ITEM_COL, ["a", "b"]) == "JSONExtractRaw(item, 'a', 'M', 'b')"


def test_path_then_value_then_errors(ch, rendered):
    """The changes-model pattern: attribute_path -> attribute_value / conversion_failed, nested and hostile."""
    path = rendered["get"]("attribute_path", ITEM_COL, ["nested", "b.c", "d'e"])
    value = rendered["get"]("attribute_value", "_av", "Int32")
    failed = rendered["get"]("conversion_failed", "_av", "UInt8")
    rows = ch.query(f"SELECT {value}, {failed} FROM (SELECT {path} AS _av FROM items) ORDER BY 1").result_rows
    assert rows == [(42, 0), (42, 0)]


def test_quoting(ch, rendered):
    names = HOSTILE_NAMES + ["plain"]
    literals = [rendered["get"]("string_literal", n) for n in names]
    [row] = ch.query("SELECT " + ", ".join(f"hex({lit})" for lit in literals)).result_rows
    assert [bytes.fromhex(h).decode() for h in row] == names
    identifiers = [rendered["get"]("quote_identifier", n) for n in names if "\x00" not in n]
    ch.command("DROP TABLE IF EXISTS quoted")
    ch.command("CREATE TABLE quoted (" + ", ".join(f"{q} String" for q in identifiers) + ") ENGINE = Memory")
    ch.command("INSERT INTO quoted (" + ", ".join(identifiers) + ") VALUES ("
               + ", ".join(literals[i] for i, n in enumerate(names) if "\x00" not in n) + ")")
    got = ch.query("SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'quoted' "
                   "ORDER BY position").result_rows
    assert [g[0] for g in got] == [n for n in names if "\x00" not in n]
    [row] = ch.query("SELECT " + ", ".join(identifiers) + " FROM quoted").result_rows
    assert list(row) == [n for n in names if "\x00" not in n]
    assert rendered["get"]("quote_identifier", "back`tick") == "`back\\`tick`"
    assert rendered["get"]("string_literal", "it's") == "'it\\'s'"


@pytest.mark.parametrize("name", sorted(ERROR_CALLS))
def test_compiler_errors(rendered, name):
    batch = rendered["batches"][name]
    assert not batch["ok"], f"{name} rendered instead of failing: {batch['sql']}"
    message = "\n".join(batch["errors"])
    for fragment in ERROR_CALLS[name][1]:
        assert fragment in message, message


def test_macro_properties_are_valid(rendered):
    ours = [w for w in rendered["warnings"] if "flatten" in w or "quote" in w or any(
        m in w for m in ("attribute_path", "attribute_value", "conversion_failed", "quote_identifier",
                         "string_literal"))]
    assert not ours, ours


@pytest.mark.parametrize("filename", sorted(GOLDEN_CALLS))
def test_golden_sql(rendered, filename):
    got = rendered["get"](*GOLDEN_CALLS[filename]) + "\n"
    path = GOLDEN / filename
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(got)
    assert path.exists(), f"{path} is missing; run with UPDATE_GOLDEN=1 to create it"
    assert got == path.read_text()


def test_golden_sql_runs(ch, rendered):
    """The golden SQL is valid ClickHouse SQL."""
    item = {"shipping": {"M": {"it's": {"M": {"a.b\\c`d": {"M": {"日本": {"N": "12.5"}}}}}}}, "n": {"N": "7"}}
    sql = {name: (GOLDEN / name).read_text().strip() for name in GOLDEN_CALLS}
    [row] = ch.query(
        "SELECT " + ", ".join([
            sql["attribute_path_nested_quoting.sql"],
            sql["attribute_value_decimal_18_2.sql"].replace("_av_1", sql["attribute_path_nested_quoting.sql"]),
            sql["attribute_value_uint256.sql"].replace("_av_1", "JSONExtractRaw(_item, 'n')"),
            sql["conversion_failed_int32.sql"],
        ]) + " FROM (SELECT {i:String} AS _item)", parameters={"i": json.dumps(item)}).result_rows
    assert row == ('{"N":"12.5"}', Decimal("12.50"), 7, 0)


if __name__ == "__main__":
    _render_worker(*sys.argv[1:4])
