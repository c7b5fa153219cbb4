"""Type inference of `dynamodb-cdc scaffold`: never a type the sample would overflow."""

from __future__ import annotations

import pytest

from dynamodb_cdc.scaffold import AttributeStats, ScaffoldError, build, column_name, infer_column, number_type, render_yaml

BIG38 = "12345678901234567890123456789012345678"


@pytest.mark.parametrize("numbers,expected", [
    (["0", "1", "-5"], "Int64"),
    ([str(2 ** 63 - 1), str(-(2 ** 63))], "Int64"),
    ([str(2 ** 63)], "UInt64"),  # one past Int64, not negative
    ([str(2 ** 63), "-1"], "Int128"),  # past Int64 and negative
    ([str(-(2 ** 63) - 1)], "Int128"),
    ([str(2 ** 64)], "Int128"),
    ([BIG38, "-" + BIG38], "Int128"),  # 38 digits fit Int128 (max 1.7E38)
    (["99999999999999999999999999999999999999"], "Int128"),
    ([str(2 ** 127)], "UInt128"),
    (["1E+40"], "Int256"), (["1E+77"], "UInt256"), (["-1E+77"], "String"), (["1E+125"], "String"),
    (["12.0", "1E+2", "007"], "Int64"),  # integers however written
    (["19.99", "0.5", "-3"], "Decimal(38, 2)"),
    (["1.230"], "Decimal(38, 2)"),  # trailing zeros do not count
    (["0." + "1" * 38], "Decimal(38, 38)"),
    (["1." + "1" * 37], "Decimal(38, 37)"),
    (["11." + "1" * 37], "Decimal(76, 37)"),  # 39 digits: past Decimal(38, x)
    (["1E-130"], "String"),  # 130 decimals: past Decimal256
    (["9.9999999999999999999999999999999999999E+125", "0.5"], "String"),
    (["abc"], "String"),
    # numbers in an S (type drift) are not bounded by DynamoDB's 38 digits: counted exactly, not rounded to 400
    # digits (Decimal(38, 1), which turned this value into NULL) nor put through str() (a ValueError past 4300 digits)
    (["0.5", "1." + "0" * 450 + "1"], "String"),
    (["0.5", "1E+5000"], "String"),
])
def test_number_type(numbers, expected):
    assert number_type(numbers)[0] == expected


def stats(name, tags, **kw):
    return AttributeStats(name, tags=tags, **kw)


def test_infer_column_per_tag_mix():
    assert infer_column(stats("a", {"S": 50}, strings_distinct=50), 100)[0] == "String"
    assert infer_column(stats("a", {"S": 50}, strings_distinct=2), 100)[0] == "LowCardinality(String)"
    assert infer_column(stats("a", {"S": 3}, strings_distinct=3, strings_uuid=3), 3)[0] == "UUID"
    assert infer_column(stats("a", {"N": 3, "S": 2}, numbers=["1", "2", "3"], strings_numeric=2,
                                strings_distinct=2), 5)[0] == "Int64"
    assert infer_column(stats("a", {"N": 3, "S": 2}, numbers=["1"], strings_numeric=1, strings_distinct=2), 5)[0] \
        == "String"  # one S is not a number: String keeps both
    assert infer_column(stats("a", {"BOOL": 4, "NULL": 1}), 9)[0] == "Bool"
    assert infer_column(stats("a", {"NULL": 4}), 4)[0] == "String"
    assert infer_column(stats("a", {"NS": 2}, numbers=["1.5", "2"]), 2)[0] == "Array(Decimal(38, 1))"
    assert infer_column(stats("a", {"SS": 2}), 2)[0] == "Array(String)"
    assert infer_column(stats("a", {"L": 2}, element_tags={"S"}), 2)[0] == "Array(String)"
    assert infer_column(stats("a", {"L": 2}, element_tags={"S", "N"}), 2)[0] == "String"
    assert infer_column(stats("a", {"M": 2}, element_tags={"S"}), 2)[0] == "Map(String, String)"
    assert infer_column(stats("a", {"M": 2}, element_tags={"M"}), 2)[0] == "String"
    ch_type, comment, _ = infer_column(stats("a", {"N": 3, "NULL": 1}, numbers=["1"]), 8)
    assert "N 75%, NULL 25%" in comment and "missing in 50% of items" in comment


def test_column_names_that_need_care():
    taken: set[str] = set()
    assert column_name("a.b", taken) == "a.b"  # dots, quotes and unicode are fine in a column name
    assert column_name('say "hi"', taken) == "say_hi"  # dbt-clickhouse cannot write " or \\
    assert column_name("_version", taken) == "version_attr"  # the changes model's own column
    assert column_name("say_hi", taken) == "say_hi_2"


def test_build_and_yaml():
    st = {"pk": stats("pk", {"S": 2}, strings_distinct=2), "n": stats("n", {"N": 2}, numbers=["1", "2"]),
          'we"ird': stats('we"ird', {"S": 1}, strings_distinct=1)}
    with pytest.raises(ScaffoldError, match="pass --key"):
        build("t-1", 2, st, [], None)
    with pytest.raises(ScaffoldError, match="no items of DynamoDB table t-1"):
        build("t-1", 0, {}, [], None)
    with pytest.raises(ScaffoldError, match="key attribute 'x' does not occur"):
        build("t-1", 2, st, [], ["x"])
    declaration, columns, key = build("t-1", 2, st, [["pk"]], None)
    assert declaration == "t_1" and key == ["pk"]
    text = render_yaml("t-1", declaration, columns, key, 2, key_guessed=True)
    import yaml

    doc = yaml.safe_load(text)
    assert doc == {"t_1": {"dynamodb_table": "t-1", "key": ["pk"], "columns": [
        {"name": "pk", "type": "String"}, {"name": "n", "type": "Int64"},
        {"name": "we_ird", "attribute": 'we"ird', "type": "String"}]}}


def test_a_key_other_than_the_landed_changes_is_refused():
    """--key pk on a table whose changes carry pk and sk was accepted: the model then merged every item
    of a partition key into one row, and no test could tell."""
    st = {"pk": stats("pk", {"S": 2}, strings_distinct=2), "sk": stats("sk", {"N": 2}, numbers=["1", "2"])}
    with pytest.raises(ScaffoldError, match="--key pk is not the key of the changes landed for t, whose Keys hold "
                                            "pk, sk: give --key pk,sk"):
        build("t", 2, st, [["pk", "sk"]], ["pk"])
    assert build("t", 2, st, [["sk", "pk"]], ["pk", "sk"])[2] == ["pk", "sk"]  # the order given wins
    with pytest.raises(ScaffoldError, match="carry no item images, only their Keys \\(pk, sk\\): a stream of view "
                                            "type KEYS_ONLY or OLD_IMAGE"):
        build("t", 0, {}, [["pk", "sk"]], None)


def test_yaml_reads_back_any_attribute_name():
    """NEL (U+0085) was read by YAML as a line break, DEL (U+007F) refused."""
    import yaml

    names = ["nel\x85x", "del\x7fx", "tab\tx", "é ☃ \"q\""]
    st = {"pk": stats("pk", {"S": 1}, strings_distinct=1), **{n: stats(n, {"S": 1}, strings_distinct=1) for n in names}}
    declaration, columns, key = build("t", 1, st, [["pk"]], None)
    doc = yaml.safe_load(render_yaml("t", declaration, columns, key, 1, key_guessed=False))
    assert {c.get("attribute", c["name"]) for c in doc["t"]["columns"]} == {"pk", *names}


def test_yaml_reads_back_a_name_past_the_bmp():
    """An emoji was written as a JSON surrogate pair ("\\ud83d\\ude00"): libyaml (dbt's loader) refused the
    project ("found invalid Unicode character escape code"), PyYAML read two lone surrogates."""
    import yaml

    st = {"pk": stats("pk", {"S": 1}, strings_distinct=1), "a😀": stats("a😀", {"S": 1}, strings_distinct=1)}
    declaration, columns, key = build("t", 1, st, [["pk"]], None)
    text = render_yaml("t", declaration, columns, key, 1, key_guessed=False)
    for loader in (yaml.SafeLoader, yaml.CSafeLoader):
        doc = yaml.load(text, Loader=loader)
        assert [c["name"] for c in doc["t"]["columns"]] == ["pk", "a😀"]


def test_reserved_names_are_the_changes_models_own():
    """scaffold renames what the package's table_spec refuses: the two lists must not drift apart."""
    import re
    from pathlib import Path

    from dynamodb_cdc import scaffold

    sql = (Path(__file__).resolve().parents[2] / "macros" / "changes" / "changes_model.sql").read_text()

    def names(macro: str) -> set[str]:
        body = sql[sql.index(f"{{% macro {macro}() %}}"):]
        body = body[:body.index("{% endmacro %}")]
        return set(re.findall(r"'(_[a-z_]+)'", body))

    assert names("_model_columns") | names("_reserved_names") == scaffold.RESERVED
    taken: set[str] = set()
    assert [scaffold.column_name(n, taken) for n in ("_version", "_seq", "_av_3", "_id", "_lastChangedAt")] == [
        "version_attr", "seq_attr", "av_3_attr", "_id", "_lastChangedAt"]
