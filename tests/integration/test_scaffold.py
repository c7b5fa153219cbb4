"""`dynamodb-cdc scaffold` on landed data, then dbt on what it wrote: the current view holds every item exactly.

A full export and an incremental export of a table `catalog` (every type, a number beyond Int64,
38-digit decimals, a number in an S, a UUID, a low-cardinality string) are landed by the loader.
scaffold proposes the declaration and writes the two models into a fresh dbt project that
installs this package; `dbt run` builds it, and every value reads back exactly, with no
conversion error: the inferred types hold the whole sample.
"""

from __future__ import annotations

import base64
import json
import textwrap
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import yaml

from conftest import ROOT, Dbt
from dynamodb_cdc.testing.exports import incremental_line, write_full_export, write_incremental_export

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/catalog"
T0 = datetime(2026, 9, 1, tzinfo=timezone.utc)


def make_item(i: int) -> dict:
    item = {
        "pk": {"S": f"p-{i % 7}"}, "sk": {"N": str(i)},
        "price": {"N": ["19.99", "0.5", "1234567890123456789012345678.123456789", "-3"][i % 4]},
        "big": {"N": str(2 ** 63 + i) if i % 3 else "-1"},
        "qty": {"N": str(i * 10)},
        "name": {"S": f"item {i} ☃"},
        "status": {"S": ["open", "closed"][i % 2]},
        "flag": {"BOOL": i % 2 == 0},
        "tags": {"SS": [f"t{i}", "common"]},
        "scores": {"NS": ["1.5", str(i)]},
        "attrs": {"M": {"color": {"S": "red"}, "size": {"S": str(i)}}},
        "raw": {"B": base64.b64encode(bytes([i, 255])).decode()},
        "id": {"S": str(uuid.UUID(int=i + 1))},
        "drift": {"N": str(i)} if i % 2 else {"S": str(i * 2)},  # a number, sometimes in an S
        "mixed": {"S": "text"} if i % 2 else {"N": "5"},
        "nested": {"M": {"a": {"L": [{"N": "1"}, {"S": "x"}]}}},
    }
    if i % 5 == 0:
        del item["qty"]  # sometimes missing
    return item


def _run_scaffolded(clickhouse, project, tmp_path, declaration: str) -> None:
    """dbt deps and dbt run of a project whose models scaffold wrote, with the declaration it printed."""
    (project / "dbt_project.yml").write_text(textwrap.dedent("""\
        name: scaffold_test
        version: "1.0"
        config-version: 2
        profile: scaffold_test
        model-paths: ["models"]
        vars:
          dynamodb_cdc_tables:
        """) + textwrap.indent(declaration, "    "))
    (project / "packages.yml").write_text(f"packages:\n  - local: {json.dumps(str(ROOT))}\n")
    dbt = Dbt(clickhouse, project, tmp_path, "scaffold_test")
    dbt("deps")
    dbt("run")


def test_scaffold_then_dbt_builds_every_item_exactly(s3, clickhouse, tmp_path):
    prefix = f"scaffold-{uuid.uuid4().hex[:6]}"
    items = {i: make_item(i) for i in range(40)}
    write_full_export(s3, s3.bucket, ARN, list(items.values()), prefix=prefix, export_time=T0, files=2)
    changed = {**items[3], "qty": {"N": "999"}}
    write_incremental_export(s3, s3.bucket, ARN, [
        incremental_line({"pk": items[3]["pk"], "sk": items[3]["sk"]}, changed, items[3], int(T0.timestamp() * 1e6) + 5),
        incremental_line({"pk": items[4]["pk"], "sk": items[4]["sk"]}, None, items[4], int(T0.timestamp() * 1e6) + 6),
    ], export_from=T0, export_to=T0 + timedelta(hours=1), prefix=prefix)
    items[3] = changed
    del items[4]
    clickhouse.cli("load-export", f"s3://{s3.bucket}/{prefix}", check=True)

    project = tmp_path / "project"
    result = clickhouse.cli("scaffold", "catalog", "--output-dir", str(project / "models"), check=True)
    declaration = yaml.safe_load(result.stdout)
    spec = declaration["catalog"]
    assert spec["key"] == ["pk", "sk"]  # from the Keys of the incremental export
    types = {c["name"]: c["type"] for c in spec["columns"]}
    assert types == {
        "pk": "String", "sk": "Int64", "attrs": "Map(String, String)", "big": "Int128", "drift": "Int64",
        "flag": "Bool", "id": "UUID", "mixed": "String", "name": "String", "nested": "String",
        "price": "Decimal(38, 9)", "qty": "Int64", "raw": "String", "scores": "Array(Decimal(38, 1))",
        "status": "LowCardinality(String)", "tags": "Array(String)"}
    qty_line = next(line for line in result.stdout.splitlines() if '"qty"' in line)
    assert "# N 100%; missing in 20% of items; integers" in qty_line  # 8 of the 41 sampled items lack qty
    drift_line = next(line for line in result.stdout.splitlines() if '"drift"' in line)
    assert "N 51%, S 49%" in drift_line and "type drift" in drift_line  # 21 and 20 of 41
    assert (project / "models" / "catalog_changes.sql").read_text().strip() == \
        "{{ dynamodb_cdc.changes_model('catalog') }}"
    # A second run does not overwrite the models without --force.
    again = clickhouse.cli("scaffold", "catalog", "--output-dir", str(project / "models"))
    assert again.returncode == 1 and "catalog_changes.sql exists; pass --force" in again.stderr

    _run_scaffolded(clickhouse, project, tmp_path, result.stdout)

    rows = clickhouse.rows(
        f"SELECT pk, sk, price, big, qty, name, status, flag, tags, scores, attrs, raw, toString(id), drift, mixed, "
        f"nested, _conversion_errors, _other_attributes FROM {clickhouse.schema}.catalog_current ORDER BY sk")
    assert [r[1] for r in rows] == sorted(items)
    for r, (i, item) in zip(rows, sorted(items.items())):
        (pk, sk, price, big, qty, name, status, flag, tags, scores, attrs, raw, id_, drift, mixed, nested, errors,
         other) = r
        assert (pk, sk) == (item["pk"]["S"], i)
        assert price == Decimal(item["price"]["N"]) and big == int(item["big"]["N"])
        assert qty == (int(item["qty"]["N"]) if "qty" in item else None)
        assert (name, status, flag) == (item["name"]["S"], item["status"]["S"], item["flag"]["BOOL"])
        assert tags == sorted(item["tags"]["SS"]) and scores == sorted(Decimal(x) for x in item["scores"]["NS"])
        assert attrs == {k: v["S"] for k, v in item["attrs"]["M"].items()}
        assert raw == item["raw"]["B"] and id_ == item["id"]["S"]
        assert drift == int(next(iter(item["drift"].values())))
        assert mixed == next(iter(item["mixed"].values()))
        assert json.loads(nested) == item["nested"]
        assert errors == [] and other == "{}"


def test_scaffold_types_every_sampled_number_and_keeps_uppercase_uuids_as_text(s3, clickhouse):
    """The sampled numbers were capped at 100,000 distinct values, so the type was chosen from those
    kept: a set member past them (1E+30) overflowed the proposed Array(Int64).  An upper-case UUID was
    proposed as UUID, which ClickHouse writes in lowercase: the text no longer matched DynamoDB's."""
    items = [{"pk": {"S": f"p{i}"}, "ns": {"NS": [str(i * 11 + j) for j in range(11)]},
              "u": {"S": str(uuid.UUID(int=i + 1)).upper() if i % 2 else str(uuid.UUID(int=i + 1))}}
             for i in range(10_000)]
    items[-1]["ns"]["NS"].append("1" + "0" * 30)
    write_full_export(s3, s3.bucket, ARN, items, prefix="many", export_time=T0, files=2)
    clickhouse.cli("load-export", f"s3://{s3.bucket}/many", check=True)
    result = clickhouse.cli("scaffold", "catalog", "--key", "pk", "--no-models", check=True)
    types = {c["name"]: c["type"] for c in yaml.safe_load(result.stdout)["catalog"]["columns"]}
    assert types == {"pk": "String", "ns": "Array(Int128)", "u": "String"}


def test_scaffold_samples_across_all_landed_items_not_the_first_read(s3, clickhouse):
    """The sample was the first --sample lines ClickHouse read (the start of the oldest files): items
    landed later with wider values were never seen, and the proposed type did not hold them."""
    items = [{"pk": {"S": f"p{i}"}, "n": {"N": str(2 ** 70 + i) if i >= 2900 else str(i)}} for i in range(3000)]
    write_full_export(s3, s3.bucket, ARN, items, prefix="spread", export_time=T0, files=3)
    clickhouse.cli("load-export", f"s3://{s3.bucket}/spread", check=True)
    result = clickhouse.cli("scaffold", "catalog", "--key", "pk", "--no-models", "--sample", "300", check=True)
    types = {c["name"]: c["type"] for c in yaml.safe_load(result.stdout)["catalog"]["columns"]}
    assert types == {"pk": "String", "n": "Int128"}, result.stdout
    assert "300 sampled items" in result.stdout


def test_scaffold_samples_items_not_copies_of_one_line(s3, clickhouse):
    """Full exports of a table repeat each unchanged item as the same line, whose hash is the same: the
    lowest hashes were the same few items again (four exports, --sample 100 of 100 items: 25 items), and
    a wider value in another item was not seen, though --sample covered the table."""
    items = [{"pk": {"S": f"p{i}"}, "n": {"N": str(2 ** 70) if i == 1 else str(i)}} for i in range(100)]
    for e in range(4):
        write_full_export(s3, s3.bucket, ARN, items, prefix=f"copies{e}", export_time=T0 + timedelta(days=e))
        clickhouse.cli("load-export", f"s3://{s3.bucket}/copies{e}", check=True)
    result = clickhouse.cli("scaffold", "catalog", "--key", "pk", "--no-models", "--sample", "100", check=True)
    types = {c["name"]: c["type"] for c in yaml.safe_load(result.stdout)["catalog"]["columns"]}
    assert types == {"pk": "String", "n": "Int128"}, result.stdout
    assert "100 sampled items" in result.stdout


EMOJI_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/emoji"


# scaffold on an attribute named with a character past U+FFFF: dbt parses the declaration it prints.
def test_scaffold_of_an_emoji_attribute_parses_in_dbt(s3, clickhouse, tmp_path):
    items = [{"pk": {"S": f"p{i}"}, "mood😀": {"S": "ok"}} for i in range(3)]
    write_full_export(s3, s3.bucket, EMOJI_ARN, items, prefix="e", export_time=datetime(2026, 9, 1, tzinfo=timezone.utc))
    clickhouse.cli("load-export", f"s3://{s3.bucket}/e", check=True)
    project = tmp_path / "project"
    result = clickhouse.cli("scaffold", "emoji", "--key", "pk", "--output-dir", str(project / "models"), check=True)
    _run_scaffolded(clickhouse, project, tmp_path, result.stdout)
    assert clickhouse.rows(f"SELECT pk, `mood😀` FROM {clickhouse.schema}.emoji_current ORDER BY pk") == [
        ("p0", "ok"), ("p1", "ok"), ("p2", "ok")]


# A number attribute that sometimes holds its number in an S: an S is not bounded by DynamoDB's 38 digits,
# and the proposed type must hold it (or be String), never stop the command.
DRIFT_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/drift"


def _drift_type(s3, clickhouse, prefix, value):
    items = [{"pk": {"S": "a"}, "x": {"N": "0.5"}}, {"pk": {"S": "b"}, "x": {"S": value}}]
    write_full_export(s3, s3.bucket, DRIFT_ARN, items, prefix=prefix, export_time=T0)
    clickhouse.cli("load-export", f"s3://{s3.bucket}/{prefix}", check=True)
    result = clickhouse.cli("scaffold", "drift", "--key", "pk", "--no-models")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return {c["name"]: c["type"] for c in yaml.safe_load(result.stdout)["drift"]["columns"]}["x"]


def test_a_long_number_in_an_s_is_not_rounded_into_a_decimal_too_small(s3, clickhouse):
    # 452 significant digits: was Decimal(38, 1), which reads this value as NULL (a conversion error)
    assert _drift_type(s3, clickhouse, "long", "1." + "0" * 450 + "1") == "String"


def test_a_wide_exponent_in_an_s_does_not_stop_scaffold(s3, clickhouse):
    # was a traceback: ValueError, Exceeds the limit (4300 digits) for integer string conversion
    assert _drift_type(s3, clickhouse, "wide", "1E+5000") == "String"
