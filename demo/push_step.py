"""The demo's last step: a per-user summary model pushed back to DynamoDB, then read with GetItem.

Called by demo/demo.py as ``run_push_step(url, bin_dir, work)`` once the
current-state tables are built, with AWS_ENDPOINT_URL already aimed at moto:

1. ``dbt run --select user_summary`` refreshes the example summary model
   (examples/models/user_summary.sql, exposure user_summary_dynamodb);
2. creates the DynamoDB table ``user_summary`` (key ``user_id``) in moto;
3. runs ``dynamodb-cdc push --exposure user_summary_dynamodb``: the exposure
   (examples/models/exposures.yml) declares the relation, the table, the key
   and --sync-deletes in ``meta.dynamodb_push``; dbt's manifest gives its relation;
4. reads every user back with GetItem and compares each item with the model's row.
"""

from __future__ import annotations

import os
import subprocess
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"  # the example dbt project (dbt deps already run by demo.py)
TABLE = "user_summary"
RELATION = "analytics.user_summary"


def _step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def _run(cmd: list[str], work: Path, env: dict | None = None) -> int:
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=work, env=env).returncode


def _model_rows(url: str) -> list[dict]:
    from dynamodb_cdc.connection import open_client

    client = open_client(url)
    try:
        result = client.query(f"SELECT * FROM {RELATION} ORDER BY user_id")
        return [dict(zip(result.column_names, row)) for row in result.result_rows]
    finally:
        client.close()  # chDB: one process at a time; the push subprocess opens it next


def _as_read_back(row: dict) -> dict:
    """What GetItem gives back (through TypeDeserializer) for a model row: numbers as Decimal, NULLs omitted."""
    out = {}
    for name, value in row.items():
        if value is None:
            continue
        out[name] = Decimal(value) if isinstance(value, (int, Decimal)) and not isinstance(value, bool) else value
    return out


def run_push_step(url: str, bin_dir: Path, work: Path) -> bool:
    import boto3
    from boto3.dynamodb.types import TypeDeserializer

    from dynamodb_cdc.connection import parse_url

    target = parse_url(url)
    env = {**os.environ, "DBT_LOG_PATH": str(work / "logs"), "DBT_TARGET_PATH": str(work / "target")}
    if target.embedded:
        env.setdefault("DYNAMODB_CDC_CHDB_PATH", target.path)  # read by profiles.example.yml

    _step("push: a per-user summary model, back into DynamoDB for the application")
    dbt = [str(bin_dir / "dbt"), "run", "--select", "user_summary", "--project-dir", str(EXAMPLES),
           "--profiles-dir", str(work / "profiles"), "--target", "embedded"]
    if _run(dbt, EXAMPLES, env) != 0:
        print("demo FAILED: dbt run --select user_summary", flush=True)
        return False

    dynamodb = boto3.client("dynamodb")
    try:
        dynamodb.create_table(
            TableName=TABLE, KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST")
        print(f"  created DynamoDB table {TABLE} (key user_id) in moto")
    except dynamodb.exceptions.ResourceInUseException:
        print(f"  DynamoDB table {TABLE} exists")

    # the same as: dynamodb-cdc push analytics.user_summary --table user_summary --key user_id --sync-deletes
    push = [str(bin_dir / "dynamodb-cdc"), "push", "--exposure", "user_summary_dynamodb",
            "--manifest", str(work / "target" / "manifest.json"), "--clickhouse-url", url]
    if _run(push, work) != 0:
        print("demo FAILED: dynamodb-cdc push", flush=True)
        return False

    rows = _model_rows(url)
    d = TypeDeserializer()
    print(f"\nGetItem on DynamoDB table {TABLE}, one call per user of {RELATION}:")
    ok = bool(rows)
    for row in rows:
        item = dynamodb.get_item(TableName=TABLE, Key={"user_id": {"S": row["user_id"]}},
                                 ConsistentRead=True).get("Item")
        got = {k: d.deserialize(v) for k, v in item.items()} if item else None
        same = got == _as_read_back(row)
        ok = ok and same
        shown = ", ".join(f"{k}={v}" for k, v in sorted((got or {}).items()))
        print(f"  {row['user_id']}: {shown or 'MISSING'}{'' if same else '   <- differs from the model'}")
    if not ok:
        print(f"demo FAILED: the DynamoDB items differ from {RELATION}", flush=True)
        return False
    print(f"every item equals its row of {RELATION} (numbers exact, NULL columns omitted).")
    return True
