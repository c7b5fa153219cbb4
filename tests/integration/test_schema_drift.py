"""A living schema: across incremental runs an attribute appears, changes type and disappears, and an
undeclared attribute comes and goes.  Nothing fails and nothing is lost: each value is in its declared
column, or (when the declared type cannot take it, or no column declares it) in _other_attributes.

Declaration `drift` in integration_tests/dbt_project.yml: pk String, score Int64, label String,
tags Array(String).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

from conftest import ROOT, Dbt
from dynamodb_cdc.testing.exports import incremental_line, write_full_export, write_incremental_export

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/drift"
T0 = datetime(2026, 10, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def micros(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000


def test_attributes_appear_change_type_and_disappear(s3, clickhouse, tmp_path):
    prefix = f"drift-{uuid.uuid4().hex[:6]}"
    dbt = Dbt(clickhouse, ROOT / "integration_tests", tmp_path, "dynamodb_cdc_integration_tests")

    def stage(lines_or_items, start: datetime | None = None):
        if start is None:
            write_full_export(s3, s3.bucket, ARN, lines_or_items, prefix=prefix, export_time=T0)
        else:
            write_incremental_export(s3, s3.bucket, ARN, lines_or_items, export_from=start, export_to=start + HOUR,
                                     prefix=prefix)
        clickhouse.cli("load-export", f"s3://{s3.bucket}/{prefix}", check=True)
        dbt("run", "--select", "drift_changes", "drift_current")
        return {r[0]: (r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in clickhouse.rows(
            f"SELECT pk, score, label, tags, _other_attributes, _conversion_errors "
            f"FROM {clickhouse.schema}.drift_current ORDER BY pk")}

    a0 = {"pk": {"S": "a"}, "label": {"S": "x"}}
    b0 = {"pk": {"S": "b"}, "label": {"S": "y"}}
    # 1. A full export: no item has score or tags yet.
    assert stage([a0, b0]) == {"a": (None, "x", [], {}, []), "b": (None, "y", [], {}, [])}

    # 2. score and tags appear on a; b grows an attribute no column declares.
    a1 = {**a0, "score": {"N": "10"}, "tags": {"SS": ["t2", "t1"]}}
    b1 = {**b0, "color": {"S": "red"}}
    assert stage([incremental_line({"pk": a0["pk"]}, a1, a0, micros(T0) + 1_000),
                  incremental_line({"pk": b0["pk"]}, b1, b0, micros(T0) + 2_000)], T0) == {
        "a": (10, "x", ["t1", "t2"], {}, []),
        "b": (None, "y", [], {"color": {"S": "red"}}, []),
    }

    # 3. score changes type: a number in an S is still a number; text is not, and is kept whole.
    #    label becomes an N (a String column takes the number text); tags becomes a list.
    a2 = {**a1, "score": {"S": "42"}, "tags": {"L": [{"S": "x"}, {"N": "1.50"}]}}
    b2 = {**b1, "score": {"S": "high"}, "label": {"N": "7.0"}}
    assert stage([incremental_line({"pk": a0["pk"]}, a2, a1, micros(T0 + HOUR) + 1_000),
                  incremental_line({"pk": b0["pk"]}, b2, b1, micros(T0 + HOUR) + 2_000)], T0 + HOUR) == {
        "a": (42, "x", ["x", "1.50"], {}, []),
        "b": (None, "7.0", [], {"color": {"S": "red"}, "score": {"S": "high"}}, ["score"]),
    }

    # 4. score disappears from a, color from b; b's score is a number again; a new item c arrives
    #    with a map inside its tags (a String element keeps it as DynamoDB JSON text) and a score
    #    beyond Int64 (NULL, named, and kept whole in _other_attributes).
    a3 = {k: v for k, v in a2.items() if k != "score"}
    b3 = {**{k: v for k, v in b2.items() if k != "color"}, "score": {"N": "5"}}
    c3 = {"pk": {"S": "c"}, "tags": {"L": [{"S": "ok"}, {"M": {"k": {"S": "v"}}}]}, "score": {"N": "1E+19"}}
    assert stage([incremental_line({"pk": a0["pk"]}, a3, a2, micros(T0 + 2 * HOUR) + 1_000),
                  incremental_line({"pk": b0["pk"]}, b3, b2, micros(T0 + 2 * HOUR) + 2_000),
                  incremental_line({"pk": c3["pk"]}, c3, None, micros(T0 + 2 * HOUR) + 3_000)], T0 + 2 * HOUR) == {
        "a": (None, "x", ["x", "1.50"], {}, []),
        "b": (5, "7.0", [], {}, []),
        "c": (None, None, ['ok', '{"M":{"k":{"S":"v"}}}'], {"score": {"N": "1E+19"}}, ["score"]),
    }
