"""End-to-end demo on the embedded engine, with no AWS account and no server.

1. starts moto (S3) on a free loopback port;
2. writes two DynamoDB full exports in AWS's exact layout (users, orders);
3. lands them with `dynamodb-cdc load-export`;
4. runs `dbt deps` and `dbt build` in the example project examples/ on chDB (the
   `embedded` target of profiles.example.yml);
5. prints the current-state tables;
6. then the table changes: an incremental export of the next hour (an update, a
   delete, an insert) is landed and `dbt run` applies it incrementally;
7. then live changes: the `users` table in moto's DynamoDB gets a stream, the
   application writes to it, `dynamodb-cdc consume-streams` lands the stream
   records and `dbt run` applies them; `users_current` is compared with a Scan
   of the DynamoDB table;
8. prints `users` again; then a per-user summary model is pushed back into a
   DynamoDB table with `dynamodb-cdc push` and read back with GetItem
   (demo/push_step.py); then moto stops.

Everything lives in .demo/ (recreated on every run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".demo"
EXAMPLES = ROOT / "examples"  # the dbt project that installs this package from ../
BIN = Path(sys.executable).parent
BUCKET = "demo-dynamodb-exports"
ACCOUNT = "123456789012"

USERS = [
    {"id": {"S": "u-001"}, "first_name": {"S": "Ada"}, "age": {"N": "36"}},
    {"id": {"S": "u-002"}, "first_name": {"S": "Grace"}, "age": {"N": "45"}},
    {"id": {"S": "u-003"}, "first_name": {"S": "Alan"}, "age": {"N": "41"}},
    {"id": {"S": "u-004"}, "first_name": {"S": "Edsger"}},
    {"id": {"S": "u-005"}, "first_name": {"S": "Barbara"}, "age": {"NULL": True}},
]

ORDERS = [
    {
        "customer_id": {"S": "u-001"},
        "order_id": {"N": "1001"},
        "total": {"N": "129.90"},
        "quantity": {"N": "3"},
        "paid": {"BOOL": True},
        "status": {"S": "shipped"},
        "shipping": {"M": {"city": {"S": "London"}, "zip": {"S": "N1 9GU"}}},
        "receipt": {"B": "UERGIHJlY2VpcHQ="},
        "loyalty_points": {"N": "9007199254740993"},
    },
    {
        "customer_id": {"S": "u-001"},
        "order_id": {"N": "1002"},
        "total": {"N": "15"},
        "quantity": {"N": "1"},
        "paid": {"BOOL": False},
        "status": {"S": "pending"},
        "note": {"S": "leave at the door"},
        "shipping": {"M": {"city": {"S": "London"}}},
    },
    {
        "customer_id": {"S": "u-002"},
        "order_id": {"N": "1003"},
        "total": {"N": "0.01"},
        "quantity": {"N": "65535"},
        "paid": {"BOOL": True},
        "status": {"S": "delivered"},
        "note": {"NULL": True},
        "shipping": {"M": {"city": {"S": "Zürich"}}},
    },
]


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def run(cmd: list[str], cwd: Path = WORK, **kwargs) -> None:
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=cwd, **kwargs)


def show(url: str, models) -> tuple:
    from dynamodb_cdc.connection import open_client

    client = open_client(url)
    try:
        for model in models:
            result = client.query(
                f"SELECT * EXCEPT (_version, _ttl_deleted, _source_ref, _ingested_at) FROM analytics.{model} ORDER BY 1, 2"
            )
            print(f"\nanalytics.{model}:")
            print("  " + " | ".join(result.column_names))
            for row in result.result_rows:
                print("  " + " | ".join("NULL" if v is None else str(v) for v in row))
        return client.query(
            "SELECT (SELECT count() FROM dynamodb_raw.export_lines), (SELECT count() FROM dynamodb_raw.quarantine), "
            "(SELECT count() FROM analytics.users_current), (SELECT count() FROM analytics.orders_current)"
        ).result_rows[0]
    finally:
        client.close()


def main() -> int:
    import boto3

    from dynamodb_cdc.testing.exports import incremental_line, write_full_export, write_incremental_export
    from dynamodb_cdc.testing.moto import moto_server

    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "profiles").mkdir(parents=True)
    shutil.copy(ROOT / "profiles.example.yml", WORK / "profiles" / "profiles.yml")
    chdb_dir = WORK / "chdb"
    os.environ["DYNAMODB_CDC_CHDB_PATH"] = str(chdb_dir)  # read by profiles.example.yml
    url = f"chdb://{chdb_dir}"

    with moto_server() as endpoint:
        step(f"moto S3 on {endpoint}: writing two DynamoDB full exports")
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        t = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
        for table, items, files in (("users", USERS, 2), ("orders", ORDERS, 1)):
            written = write_full_export(
                s3, BUCKET, f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{table}", items,
                prefix=f"exports/{table}", export_time=t, files=files,
            )
            print(f"  {written.uri}  ({len(items)} items, {files} data files)")

        step("loader: dynamodb-cdc load-export, one export prefix per table")
        for table in ("users", "orders"):
            run([str(BIN / "dynamodb-cdc"), "load-export", f"s3://{BUCKET}/exports/{table}", "--clickhouse-url", url])
        step("loader again: a rerun is a no-op")
        run([str(BIN / "dynamodb-cdc"), "load-export", f"s3://{BUCKET}/exports/users", "--clickhouse-url", url])

        dbt = [str(BIN / "dbt"), "--project-dir", str(EXAMPLES), "--profiles-dir", str(WORK / "profiles"),
               "--target", "embedded"]
        dbt_env = {**os.environ, "DBT_LOG_PATH": str(WORK / "logs"), "DBT_TARGET_PATH": str(WORK / "target")}
        step("dbt deps, then dbt build on the embedded engine (chDB), in the example project examples/")
        run([dbt[0], "deps", *dbt[1:]], env=dbt_env, cwd=EXAMPLES)
        run([dbt[0], "build", *dbt[1:]], env=dbt_env, cwd=EXAMPLES)

        step("results")
        counts = show(url, ("users_current", "orders_current"))
        print(
            f"\nraw lines {counts[0]}, quarantined {counts[1]}, users {counts[2]} (expected {len(USERS)}), "
            f"orders {counts[3]} (expected {len(ORDERS)})"
        )
        if (counts[2], counts[3]) != (len(USERS), len(ORDERS)):
            print("demo FAILED: current-state counts differ from the export", file=sys.stderr)
            return 1

        step("the table changes: an incremental export of the next hour (update u-002, delete u-003, insert u-006)")
        micros = int(t.timestamp() * 1_000_000)
        lines = [
            incremental_line({"id": {"S": "u-002"}}, {**USERS[1], "age": {"N": "46"}}, USERS[1], micros + 60_000_000),
            incremental_line({"id": {"S": "u-003"}}, None, USERS[2], micros + 120_000_000),
            incremental_line({"id": {"S": "u-006"}}, {"id": {"S": "u-006"}, "first_name": {"S": "Margaret"},
                                                     "age": {"N": "33"}}, None, micros + 180_000_000),
        ]
        w = write_incremental_export(
            s3, BUCKET, f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/users", lines,
            export_from=t, export_to=t + timedelta(hours=1), prefix="exports/users",
        )
        print(f"  {w.uri}  ({len(lines)} changes, data in exports/users/AWSDynamoDB/data/)")
        run([str(BIN / "dynamodb-cdc"), "load-export", f"s3://{BUCKET}/exports/users", "--clickhouse-url", url])
        step("dbt run: the changes model reads only the new rows")
        run([dbt[0], "run", "--select", "users_changes", "users_current", *dbt[1:]], env=dbt_env, cwd=EXAMPLES)
        step("users after the incremental export")
        show(url, ("users_current",))
        now = query(url, "SELECT id, age FROM analytics.users_current ORDER BY id")
        expected = [("u-001", 36), ("u-002", 46), ("u-004", None), ("u-005", None), ("u-006", 33)]
        if now != expected:
            print(f"demo FAILED: users after the changes are {now}, expected {expected}", file=sys.stderr)
            return 1

        if not live_changes(url, dbt, dbt_env):
            return 1

        from push_step import run_push_step  # demo/push_step.py

        if not run_push_step(url, BIN, WORK):
            return 1

    print("\ndemo OK. The embedded data is in .demo/chdb; inspect it with the same URL once nothing else has it open.")
    return 0


def query(url: str, sql: str) -> list[tuple]:
    from dynamodb_cdc.connection import open_client

    client = open_client(url)
    try:
        return client.query(sql).result_rows
    finally:
        client.close()  # chDB: one process at a time, so close before the next command


def live_changes(url: str, dbt: list[str], dbt_env: dict) -> bool:
    """The table in DynamoDB (moto) gets a stream; its writes flow to users_current."""
    import boto3
    from boto3.dynamodb.types import TypeDeserializer

    dynamodb = boto3.client("dynamodb")
    step("live changes: the users table in DynamoDB, as it is now, gets a DynamoDB stream")
    dynamodb.create_table(
        TableName="users", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    current = [item for item in USERS if item["id"]["S"] != "u-003"]
    current = [{**i, "age": {"N": "46"}} if i["id"]["S"] == "u-002" else i for i in current]
    current.append({"id": {"S": "u-006"}, "first_name": {"S": "Margaret"}, "age": {"N": "33"}})
    for item in current:
        dynamodb.put_item(TableName="users", Item=item)
    arn = dynamodb.update_table(TableName="users", StreamSpecification={
        "StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})["TableDescription"]["LatestStreamArn"]
    print(f"  stream {arn}")
    print("  the application writes: UpdateItem u-001 age=37, DeleteItem u-004, PutItem u-007, UpdateItem u-007 age=29")
    dynamodb.update_item(TableName="users", Key={"id": {"S": "u-001"}}, UpdateExpression="SET age = :a",
                         ExpressionAttributeValues={":a": {"N": "37"}})
    dynamodb.delete_item(TableName="users", Key={"id": {"S": "u-004"}})
    dynamodb.put_item(TableName="users", Item={"id": {"S": "u-007"}, "first_name": {"S": "Katherine"},
                                               "age": {"N": "28"}})
    dynamodb.update_item(TableName="users", Key={"id": {"S": "u-007"}}, UpdateExpression="SET age = :a",
                         ExpressionAttributeValues={":a": {"N": "29"}})

    step("loader: dynamodb-cdc consume-streams lands the stream records (drains the stream, then exits)")
    run([str(BIN / "dynamodb-cdc"), "consume-streams", "--table", "users", "--clickhouse-url", url])
    step("dbt run: the same changes model applies the stream records")
    run([dbt[0], "run", "--select", "users_changes", "users_current", *dbt[1:]], env=dbt_env, cwd=EXAMPLES)
    step("users after the live changes")
    show(url, ("users_current",))

    d = TypeDeserializer()
    scan = sorted(
        (item["id"], int(item["age"]) if item.get("age") is not None else None)
        for item in ({k: d.deserialize(v) for k, v in i.items()}
                     for i in dynamodb.scan(TableName="users", ConsistentRead=True)["Items"])
    )
    now = query(url, "SELECT id, age FROM analytics.users_current ORDER BY id")
    print(f"\nScan of the DynamoDB table: {scan}\nanalytics.users_current:    {now}")
    if now != scan:
        print("demo FAILED: users_current differs from a Scan of the DynamoDB table", file=sys.stderr)
        return False
    print("users_current equals a Scan of the DynamoDB table.")
    return True


if __name__ == "__main__":
    sys.exit(main())
