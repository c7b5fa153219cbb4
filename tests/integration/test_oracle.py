"""Oracle: random items of every DynamoDB type, through the loader and the changes model, read back
and compared value by value with boto3's TypeDeserializer applied to the same items.

Items (fixed seed) hold S with any Unicode (empty too), N with up to 38 significant digits at both
ends of DynamoDB's range, B (empty too), BOOL, NULL, SS / NS / BS sets up to 200 members, L and M
nested to DynamoDB's limit of 32 levels, and attributes that are sometimes missing.  They are written
as a full export in moto S3, landed by `dynamodb-cdc load-export`, and flattened by the
`oracle` declaration of integration_tests/ (String, Decimal(76, 38), Float64, Bool, Array(T),
Map(String, T), JSON text, list positions and a 32-level path).
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import uuid
from datetime import datetime, timezone
from decimal import Decimal, localcontext

from boto3.dynamodb.types import Binary, TypeDeserializer

from conftest import ROOT, Dbt
from dynamodb_cdc.testing.exports import write_full_export

SEED = 20261122
ITEMS = int(os.environ.get("ORACLE_ITEMS", "300"))
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/oracle"
DEPTH = 32  # DynamoDB's nesting limit
CHARS = ["a", "Z", "0", " ", "é", "ß", "日本", "語", "😀", "\U0001f3f3\ufe0f", "\"", "\\", "'", "`", "\n", "\t", "\u2028",
         "{", "}", "[", "]", ":", ",", "%", "$x", "\u00a0", "\u0301"]
EDGE_NUMBERS = ["0", "1E-130", "-1E-130", "9.9999999999999999999999999999999999999E+125",
                "-9.9999999999999999999999999999999999999E+125", "12345678901234567890123456789012345678",
                "-0.12345678901234567890123456789012345678", "1E+37", "99999999999999999999999999999999999999",
                "0.00000000000000000000000000000000000001", "100", "1.5"]


def text(rng: random.Random) -> str:
    return "".join(rng.choice(CHARS) for _ in range(rng.choice([0, 1, 3, 12, 40])))


def number(rng: random.Random) -> str:
    if rng.random() < 0.25:
        return rng.choice(EDGE_NUMBERS)
    digits = str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(rng.randint(0, 37)))
    exponent = rng.randint(-128, 125)  # the value is d.ddd x 10^exponent (boto3 refuses 38 digits below)
    sign = rng.choice(["", "-"])
    with localcontext() as exact:
        exact.prec = 200
        plain = format(Decimal(f"{digits[0]}.{digits[1:] or '0'}E{exponent}").normalize(), "f")
    if len(plain.replace(".", "").lstrip("0")) <= 38 and rng.random() < 0.5:
        return sign + plain  # written out, as long as boto3 can read it back (38 digits)
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exponent:+d}"


def blob(rng: random.Random) -> bytes:
    return bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 5, 64])))


def scalar(rng: random.Random) -> dict:
    kind = rng.choice(["S", "N", "B", "BOOL", "NULL"])
    return {"S": {"S": text(rng)}, "N": {"N": number(rng)}, "B": {"B": blob(rng)}, "BOOL": {"BOOL": rng.random() < 0.5},
            "NULL": {"NULL": True}}[kind]


def value(rng: random.Random, depth: int) -> dict:
    """Any AttributeValue, nesting at most `depth` more levels."""
    kind = rng.choice(["scalar", "scalar", "scalar", "L", "M", "SS", "NS", "BS"] if depth > 0 else ["scalar"])
    if kind == "L":
        return {"L": [value(rng, depth - 1) for _ in range(rng.randint(0, 4))]}
    if kind == "M":
        return {"M": {text(rng) or "e": value(rng, depth - 1) for _ in range(rng.randint(0, 4))}}
    return sets(rng, kind) if kind in ("SS", "NS", "BS") else scalar(rng)


def sets(rng: random.Random, tag: str) -> dict:
    """A non-empty set (DynamoDB has no empty sets), members unique (numbers by value)."""
    size = rng.choice([1, 2, 7, 200])
    make = {"SS": text, "NS": number, "BS": blob}[tag]
    members, seen = [], set()
    while len(members) < size:
        m = make(rng)
        k = Decimal(m) if tag == "NS" else m
        if k not in seen:
            seen.add(k)
            members.append(m)
    return {tag: members}


def nested(depth: int, leaf: dict, kind: str) -> dict:
    """A map of maps (key "k") or a list of lists, `depth` levels deep, with `leaf` at the bottom."""
    av = leaf
    for _ in range(depth - 1):
        av = {"M": {"k": av}} if kind == "M" else {"L": [av]}
    return av


def item(rng: random.Random, i: int) -> dict:
    attrs = {
        "s": {"S": text(rng)}, "n": {"N": number(rng)}, "b": {"B": blob(rng)}, "bool": {"BOOL": rng.random() < 0.5},
        "nul": {"NULL": True}, "ss": sets(rng, "SS"), "ns": sets(rng, "NS"), "bs": sets(rng, "BS"),
        "l": {"L": [value(rng, 3) for _ in range(rng.randint(0, 5))]},
        "m": {"M": {text(rng) or "e": value(rng, 3) for _ in range(rng.randint(0, 5))}},
        "m_flat": {"M": {text(rng) or "e": {"S": text(rng)} for _ in range(rng.randint(0, 5))}},
        "deep": nested(DEPTH, {"S": text(rng)}, "M"),
        "deep_list": nested(DEPTH, {"N": number(rng)}, "L"),
    }
    out = {"pk": {"S": f"item-{i:04d}"}}
    for name, av in attrs.items():
        if rng.random() < 0.85:  # otherwise the attribute is missing
            out[name] = av
    return out


def wire(av: dict) -> dict:
    """An AttributeValue as DynamoDB JSON (what exports and streams carry): binaries in base64."""
    (tag, v), = av.items()
    if tag == "B":
        return {"B": base64.b64encode(v).decode()}
    if tag == "BS":
        return {"BS": [base64.b64encode(b).decode() for b in v]}
    if tag == "L":
        return {"L": [wire(x) for x in v]}
    if tag == "M":
        return {"M": {k: wire(x) for k, x in v.items()}}
    return {tag: v}


def unwire(av: dict) -> dict:
    (tag, v), = av.items()
    if tag == "B":
        return {"B": base64.b64decode(v)}
    if tag == "BS":
        return {"BS": [base64.b64decode(b) for b in v]}
    if tag == "L":
        return {"L": [unwire(x) for x in v]}
    if tag == "M":
        return {"M": {k: unwire(x) for k, x in v.items()}}
    return {tag: v}


DESERIALIZE = TypeDeserializer().deserialize


def from_json_text(t: str | None):
    """A String column holding an AttributeValue as DynamoDB JSON text, deserialized."""
    return None if t is None else DESERIALIZE(unwire(json.loads(t)))


def as_string_column(av: dict | None):
    """What a String column holds for an AttributeValue: a scalar's text, a container's JSON (deserialized)."""
    if av is None:
        return None
    (tag, v), = av.items()
    if tag in ("S", "N"):
        return v
    if tag == "BOOL":
        return "true" if v else "false"
    if tag == "B":
        return base64.b64encode(v).decode()
    if tag == "NULL":
        return None
    return DESERIALIZE(av)


def string_column(t: str | None):
    """A String column read back: JSON text of a container deserialized, scalar text as is."""
    if t is not None and t.startswith("{"):
        try:
            return from_json_text(t)
        except (ValueError, AttributeError):
            pass
    return t


def fits_decimal_76_38(d: Decimal) -> bool:
    _, digits, exponent = d.as_tuple()
    while digits and digits[-1] == 0 and exponent < 0:  # trailing zeros of the fraction do not count
        digits, exponent = digits[:-1], exponent + 1
    return d.copy_abs() < Decimal("1E38") and exponent >= -38  # copy_abs: abs() would round to 28 digits


def test_every_type_equals_type_deserializer(s3, clickhouse, tmp_path):
    rng = random.Random(SEED)
    items = [item(rng, i) for i in range(ITEMS)]
    prefix = f"oracle-{uuid.uuid4().hex[:6]}"
    write_full_export(s3, s3.bucket, ARN, [{k: wire(v) for k, v in it.items()} for it in items], prefix=prefix,
                      export_time=datetime(2026, 11, 1, tzinfo=timezone.utc), files=3)
    clickhouse.cli("load-export", f"s3://{s3.bucket}/{prefix}", check=True)
    dbt = Dbt(clickhouse, ROOT / "integration_tests", tmp_path, "dynamodb_cdc_integration_tests")
    dbt("run", "--select", "oracle_changes", "oracle_current")

    rows = clickhouse.rows(
        f"SELECT pk, s, n, n_decimal, n_float, hex(b), bool, nul, ss, ns, ns_decimal, arrayMap(x -> hex(x), bs), l, "
        f"l_first, l_last, m, m_map, deep, deep_leaf, deep_list, _conversion_errors, _other_attributes "
        f"FROM {clickhouse.schema}.oracle_current ORDER BY pk")
    assert len(rows) == len(items)
    checked = 0
    for row, it in zip(rows, items):
        (pk, s, n, n_decimal, n_float, b_hex, bool_, nul, ss, ns, ns_decimal, bs_hex, l, l_first, l_last, m, m_map,
         deep, deep_leaf, deep_list, errors, other) = row
        py = {k: DESERIALIZE(v) for k, v in it.items()}  # the oracle
        assert pk == py["pk"]
        where = f"{pk}: "
        assert s == py.get("s"), where + "s"
        if "n" in py:
            assert Decimal(n) == py["n"], where + "n"
            assert n_decimal == (py["n"] if fits_decimal_76_38(py["n"]) else None), where + "n_decimal"
            assert math.isclose(n_float, float(py["n"]), rel_tol=1e-15), where + "n_float"
        else:
            assert (n, n_decimal, n_float) == (None, None, None), where + "n missing"
        assert b_hex == (py["b"].value.hex().upper() if "b" in py else None), where + "b"
        assert bool_ == py.get("bool"), where + "bool"
        assert nul is None, where + "nul"
        assert ss == sorted(py.get("ss", set()), key=lambda x: x.encode()), where + "ss (sorted by bytes)"
        assert {Decimal(x) for x in ns} == py.get("ns", set()), where + "ns"
        ns_fit = all(fits_decimal_76_38(x) for x in py.get("ns", set()))
        assert ns_decimal == (sorted(py.get("ns", set())) if ns_fit else []), where + "ns_decimal"
        assert sorted(bs_hex) == sorted(x.value.hex().upper() for x in py.get("bs", set())), where + "bs"
        assert from_json_text(l) == py.get("l"), where + "l"
        elements = it["l"]["L"] if "l" in it else []
        assert string_column(l_first) == as_string_column(elements[0] if elements else None), where + "l[0]"
        assert string_column(l_last) == as_string_column(elements[-1] if elements else None), where + "l[-1]"
        assert from_json_text(m) == py.get("m"), where + "m"
        assert m_map == py.get("m_flat", {}), where + "m_flat"
        assert from_json_text(deep) == py.get("deep"), where + "deep"
        leaf = py.get("deep")
        for _ in range(DEPTH - 1):
            leaf = leaf["k"] if leaf is not None else None
        assert deep_leaf == leaf, where + "deep leaf, 32 levels down"
        assert from_json_text(deep_list) == py.get("deep_list"), where + "deep_list"
        # The only conversion errors are the numbers Decimal(76, 38) cannot hold, named; nothing else is lost.
        want_errors = (["n_decimal"] if "n" in py and not fits_decimal_76_38(py["n"]) else []) + (
            ["ns_decimal"] if not ns_fit else [])
        assert errors == want_errors, where + "errors"
        # A value its column could not take stays in _other_attributes, as it came.
        kept = {"n": "n_decimal", "ns": "ns_decimal"}
        assert json.loads(other) == {a: wire(it[a]) for a, col in kept.items() if col in want_errors}, \
            where + "_other_attributes"
        checked += 1
    assert checked == ITEMS
    # The draw covers what it claims: both ends of the number range, deep values, big sets, empty values.
    assert any(py_n == Decimal("1E-130") for py_n in (DESERIALIZE(it["n"]) for it in items if "n" in it))
    assert any(len(it.get("ns", {}).get("NS", [])) == 200 for it in items)
    assert any(it.get("s") == {"S": ""} for it in items) and any(it.get("b") == {"B": b""} for it in items)
    assert any(isinstance(DESERIALIZE(it["b"]), Binary) for it in items if "b" in it)
