"""The pure side of `dynamodb-cdc push`: ClickHouse values -> AttributeValues, exactly or refused."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from ipaddress import IPv4Address

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer
from hypothesis import given
from hypothesis import strategies as st

from dynamodb_cdc.push_convert import (
    Column,
    ConvertOptions,
    ItemConverter,
    Refused,
    UnsupportedColumn,
    attribute_size,
    item_json,
    number_string,
)

D = Decimal
deserialize = TypeDeserializer().deserialize


def convert(columns: dict[str, str], row: tuple, key=("id",), **options):
    conv = ItemConverter([Column(n, t) for n, t in columns.items()], list(key), ConvertOptions(**options))
    return conv.convert(row)


# -- numbers -------------------------------------------------------------------------


@pytest.mark.parametrize("value, text", [
    (0, "0"),
    (-0, "0"),
    (D("-0.000"), "0"),
    (7, "7"),
    (-7, "-7"),
    (D("1.50"), "1.5"),
    (D("-0.001"), "-0.001"),
    (10**37, "1" + "0" * 37),
    (12345678901234567890123456789012345678, "12345678901234567890123456789012345678"),
    (-(10**38 - 1), "-" + "9" * 38),
    (10**50, "1E+50"),  # trailing zeros are not significant digits
    (D("1E-130"), "1E-130"),
    (D("9.9999999999999999999999999999999999999E+125"), "9.9999999999999999999999999999999999999E+125"),
    (D("1234567890123456789012345678.1234567890"), "1234567890123456789012345678.123456789"),
    (D("0.00000000000000000000000000000000000001"), "0.00000000000000000000000000000000000001"),
])
def test_number_string_is_exact(value, text):
    assert number_string(value) == text
    assert D(text) == D(value)


@pytest.mark.parametrize("value, words", [
    (10**38 + 1, "39 significant digits"),
    (-(2**255), "77 significant digits"),  # Int256's minimum
    (2**256 - 1, "78 significant digits"),  # UInt256's maximum
    (D("1E-131"), "out of DynamoDB's range"),
    (D("1E+126"), "out of DynamoDB's range"),
    (D("123456789012345678901234567890123456789012345.00"), "45 significant digits"),
    (D("NaN"), "not a finite number"),
])
def test_numbers_dynamodb_cannot_hold_are_refused(value, words):
    with pytest.raises(Refused, match=words):
        number_string(value)


@given(st.integers(min_value=-(10**40), max_value=10**40), st.integers(min_value=-140, max_value=130))
def test_number_string_round_trips_or_refuses(coefficient, exponent):
    value = D(f"{coefficient}E{exponent}")  # exact (scaleb would round to the context's 28 digits)
    digits = len(str(abs(coefficient)).rstrip("0")) if coefficient else 1
    adjusted = value.adjusted() if coefficient else 0
    try:
        text = number_string(value)
    except Refused:
        assert digits > 38 or not -130 <= adjusted <= 125
        return
    assert digits <= 38 and -130 <= adjusted <= 125
    assert D(text) == value
    assert deserialize({"N": text}) == value  # boto3's own decoder (38-digit context) reads it exactly


def test_floats_go_through_their_shortest_text():
    item = convert({"id": "String", "f": "Float64", "g": "Float32"}, (b"a", 0.1, 0.10000000149011612))
    assert item["f"] == {"N": "0.1"}
    assert item["g"] == {"N": "0.1"}  # the Float32 0.10000000149011612 reads back from 0.1
    with pytest.raises(Refused, match="column f: nan"):
        convert({"id": "String", "f": "Float64"}, (b"a", float("nan")))
    with pytest.raises(Refused, match="column f: inf"):
        convert({"id": "String", "f": "Float64"}, (b"a", float("inf")))


# -- every type -------------------------------------------------------------------


COLUMNS = {
    "id": "String",
    "i8": "Int8",
    "u64": "UInt64",
    "i256": "Int256",
    "u256": "UInt256",
    "d38": "Decimal(38, 10)",
    "d256": "Decimal(76, 20)",
    "s": "LowCardinality(String)",
    "fs": "FixedString(3)",
    "bin": "String",
    "flag": "Bool",
    "day": "Date32",
    "at": "DateTime64(9, 'UTC')",
    "uid": "UUID",
    "ip": "IPv4",
    "kind": "Enum8('a' = 1, 'b' = 2)",
    "arr": "Array(Nullable(Int64))",
    "nested": "Array(Array(String))",
    "tags": "Array(String)",
    "nums": "Array(Decimal(10, 2))",
    "blobs": "Array(String)",
    "m": "Map(String, Decimal(10, 2))",
    "mi": "Map(UInt32, String)",
    "named": "Tuple(a Int32, b String)",
    "pair": "Tuple(UInt8, String)",
    "maybe": "Nullable(Int32)",
    "nothing": "Nullable(Nothing)",
}
ROW = (
    b"u-1", -128, 2**64 - 1, -(10**37) - 1, 10**38 - 1, D("1234567890123456789012345678.1234567890"),
    D("-0.00000000000000000001"), b"h\xc3\xa9", b"ab\x00", b"\x00\xff\x80", True, dt.date(1900, 1, 1),
    "2024-01-02 03:04:05.123456789", uuid.UUID("61f0c404-5cb3-11e7-907b-a6006ad3dba0"), IPv4Address("1.2.3.4"),
    "b", [1, None, -(2**63)], [[b"x"], []], [b"x", b"y"], [D("1.50"), D("2")], [b"\x01", b"\x02"],
    {b"k": D("1.50")}, {7: b"seven"}, {"a": 1, "b": b"q"}, (2, b"r"), None, None,
)


def test_every_supported_type_converts_exactly():
    item = convert(COLUMNS, ROW, sets=frozenset({"tags", "nums", "blobs"}), binary=frozenset({"bin", "blobs"}))
    assert item == {
        "id": {"S": "u-1"},
        "i8": {"N": "-128"},
        "u64": {"N": "18446744073709551615"},
        "i256": {"N": "-10000000000000000000000000000000000001"},
        "u256": {"N": "9" * 38},
        "d38": {"N": "1234567890123456789012345678.123456789"},
        "d256": {"N": "-0.00000000000000000001"},
        "s": {"S": "hé"},
        "fs": {"S": "ab\x00"},
        "bin": {"B": b"\x00\xff\x80"},
        "flag": {"BOOL": True},
        "day": {"S": "1900-01-01"},
        "at": {"S": "2024-01-02T03:04:05.123456789Z"},
        "uid": {"S": "61f0c404-5cb3-11e7-907b-a6006ad3dba0"},
        "ip": {"S": "1.2.3.4"},
        "kind": {"S": "b"},
        "arr": {"L": [{"N": "1"}, {"NULL": True}, {"N": "-9223372036854775808"}]},
        "nested": {"L": [{"L": [{"S": "x"}]}, {"L": []}]},
        "tags": {"SS": ["x", "y"]},
        "nums": {"NS": ["1.5", "2"]},
        "blobs": {"BS": [b"\x01", b"\x02"]},
        "m": {"M": {"k": {"N": "1.5"}}},
        "mi": {"M": {"7": {"S": "seven"}}},
        "named": {"M": {"a": {"N": "1"}, "b": {"S": "q"}}},
        "pair": {"M": {"1": {"N": "2"}, "2": {"S": "r"}}},
    }  # maybe and nothing are NULL: omitted by default
    back = {k: deserialize(v) for k, v in item.items()}
    assert back["d38"] == ROW[5] and back["u256"] == ROW[4] and back["bin"] == Binary(ROW[9])
    assert back["tags"] == {"x", "y"} and back["nums"] == {D("1.5"), D("2")}


def test_nulls_are_omitted_or_written_by_choice():
    columns = {"id": "String", "maybe": "Nullable(Int32)", "arr": "Array(Nullable(String))"}
    assert convert(columns, (b"a", None, [None])) == {"id": {"S": "a"}, "arr": {"L": [{"NULL": True}]}}
    assert convert(columns, (b"a", None, [None]), nulls="null") == {
        "id": {"S": "a"}, "maybe": {"NULL": True}, "arr": {"L": [{"NULL": True}]}}


def test_an_empty_set_is_left_out_whatever_nulls_says():
    """DynamoDB has no empty set: an item without the set flattens to [], and goes back without it."""
    columns = {"id": "String", "tags": "Array(String)", "nums": "Array(UInt8)"}
    for nulls in ("omit", "null"):
        assert convert(columns, (b"a", [], [1]), sets=frozenset({"tags", "nums"}), nulls=nulls) == {
            "id": {"S": "a"}, "nums": {"NS": ["1"]}}
    assert convert(columns, (b"a", [], [])) == {"id": {"S": "a"}, "tags": {"L": []}, "nums": {"L": []}}  # lists stay


def test_float32_and_addresses_are_written_as_clickhouse_shows_them():
    """A Float32 went out as its double's text (0.10000000149011612), an IPv4-mapped IPv6 address in
    Python 3.11's spelling (::ffff:102:304)."""
    import struct
    from ipaddress import IPv6Address

    f32 = struct.unpack("<f", struct.pack("<f", 0.1))[0]
    columns = {"id": "String", "f": "Float32", "fs": "Array(Float32)", "g": "Float64", "ip": "IPv6"}
    assert convert(columns, (b"a", f32, [f32, struct.unpack("<f", struct.pack("<f", 1 / 3))[0]], 0.1,
                             IPv6Address("::ffff:1.2.3.4"))) == {
        "id": {"S": "a"}, "f": {"N": "0.1"}, "fs": {"L": [{"N": "0.1"}, {"N": "0.33333334"}]}, "g": {"N": "0.1"},
        "ip": {"S": "::ffff:1.2.3.4"}}
    assert convert({"id": "String", "ip": "IPv6"}, (b"a", IPv6Address("2001:db8::1")))["ip"] == {"S": "2001:db8::1"}


# -- refused rows ------------------------------------------------------------------


@pytest.mark.parametrize("columns, row, key, options, words", [
    ({"id": "Nullable(String)"}, (None,), ("id",), {}, "key column id is NULL"),
    ({"id": "String"}, (b"",), ("id",), {}, "key column id is empty"),
    ({"id": "String"}, (b"x" * 2049,), ("id",), {}, "2049 bytes; DynamoDB allows 2048"),
    ({"id": "String", "sk": "String"}, (b"a", b"y" * 1025), ("id", "sk"), {}, "1025 bytes; DynamoDB allows 1024"),
    ({"id": "String", "big": "String"}, (b"a", b"z" * 410_000), ("id",), {}, "DynamoDB allows 400 KB"),
    ({"id": "String", "tags": "Array(String)"}, (b"a", [b"x", b"x"]), ("id",), {"sets": frozenset({"tags"})},
     "duplicate"),
    ({"id": "String", "nums": "Array(Decimal(10, 2))"}, (b"a", [D("1.0"), D("1.00")]), ("id",),
     {"sets": frozenset({"nums"})}, "duplicate"),
    ({"id": "String", "n": "Int256"}, (b"a", 2**200), ("id",), {}, "column n: number"),
    ({"id": "String", "d": "Decimal(76, 2)"}, (b"a", D("1" * 74 + ".00")), ("id",), {}, "column d: number"),
    ({"id": "String", "m": "Map(String, Int256)"}, (b"a", {b"k": -(2**250)}), ("id",), {}, "column m: number"),
    ({"id": "String", "s": "String"}, (b"a", b"\xff"), ("id",), {}, "not valid UTF-8.*--binary s"),
])
def test_values_dynamodb_refuses_are_refused_whole(columns, row, key, options, words):
    with pytest.raises(Refused, match=words):
        convert(columns, row, key=key, **options)


@pytest.mark.parametrize("columns, key, options, words", [
    ({"id": "String", "j": "JSON"}, ("id",), {}, "column j: type JSON"),
    ({"id": "String", "v": "Variant(String, UInt64)"}, ("id",), {}, "column v: type Variant"),
    ({"id": "String", "a": "Array(DateTime64(9, 'UTC'))"}, ("id",), {}, "sub-microsecond"),
    ({"id": "Array(String)"}, ("id",), {}, "a DynamoDB key is S, N or B"),
    ({"id": "Bool"}, ("id",), {}, "a DynamoDB key is S, N or B"),
    ({"id": "String"}, ("nope",), {}, "not in the relation: nope"),
    ({"id": "String", "s": "String"}, ("id",), {"sets": frozenset({"s"})}, "only an Array column"),
    ({"id": "String", "a": "Array(Array(String))"}, ("id",), {"sets": frozenset({"a"})}, "a set needs"),
    ({"id": "String", "m": "Map(Array(String), String)"}, ("id",), {}, "cannot be attribute names"),
    ({"id": "String", "u": "UUID"}, ("id",), {"binary": frozenset({"u"})}, "--binary names column u, of type UUID"),
    ({"id": "Int32"}, ("id",), {"binary": frozenset({"id"})}, "--binary names column id, of type Int32"),
])
def test_unsupported_columns_stop_before_any_row(columns, key, options, words):
    with pytest.raises(UnsupportedColumn, match=words):
        ItemConverter([Column(n, t) for n, t in columns.items()], list(key), ConvertOptions(**options))


def test_numeric_and_binary_keys():
    conv = ItemConverter([Column("pk", "UInt256"), Column("sk", "String")], ["pk", "sk"],
                         ConvertOptions(binary=frozenset({"sk"})))
    assert conv.key_types == {"pk": "N", "sk": "B"}
    item = conv.convert((10**37, b"\x00"))
    assert item_json(conv.key_of(item)) == '{"pk":{"N":"' + "1" + "0" * 37 + '"},"sk":{"B":"AA=="}}'
    with pytest.raises(Refused, match="key column sk is empty"):
        conv.convert((1, b""))


def test_item_size_follows_dynamodb_rules():
    assert attribute_size({"S": "héllo"}) == 6
    assert attribute_size({"N": "12345"}) == 4  # 1 + ceil(5 / 2)
    assert attribute_size({"B": b"\x00\x01"}) == 2
    assert attribute_size({"L": [{"BOOL": True}, {"NULL": True}]}) == 3 + 2 + 2
    assert attribute_size({"M": {"ab": {"S": "c"}}}) == 3 + 1 + 2 + 1
