"""``make bench``: the loader and the dbt package against baselines, on the same files, in one run.

Sizes: BENCH_ITEMS (default 1,000,000) items in the full export, BENCH_CHANGES (default 100,000)
changes in the incremental export and the Kinesis stream, BENCH_FINAL_ROWS (default 10,000,000)
items in the current-state read test, BENCH_REPEAT (default 3) how many times baseline (b) and
load-export are run, one after the other, for their medians.  Writes bench/results.json: every
figure under a stable name, the machine, the sizes, and the targets as pass / fail (the command
itself does not fail on a missed target).

Everything runs on this machine: moto in server mode on 127.0.0.1 for S3 and Kinesis, chDB
(embedded ClickHouse) for every ClickHouse, one fresh data directory per measurement.  Each
measured command runs as its own process (chDB allows one process per directory), timed from
the outside (wall clock, start-up included), its peak memory read with getrusage in a wrapper
process whose only child it is, which also samples the child's private memory (RssAnon) from
/proc every 10 ms.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
BIN = Path(sys.executable).parent
PY = sys.executable
RAW = "dynamodb_raw"
SCHEMA = "analytics"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- helpers run in child processes -----------------------------------------------------


def child_rss(argv: list[str]) -> int:
    """Run argv; print its peak RSS (bytes, from the kernel) and its peak private memory
    (RssAnon, sampled from /proc every 10 ms: the memory that is its own, as against the
    engine's library mapped in from disk, RssFile) as the last stderr lines; exit with its code."""
    import resource
    import threading

    proc = subprocess.Popen(argv)
    peaks = {"RssAnon": 0, "RssFile": 0}

    def sample() -> None:
        status = f"/proc/{proc.pid}/status"
        while proc.poll() is None:
            try:
                with open(status) as fh:
                    for line in fh:
                        key, _, value = line.partition(":")
                        if key in peaks:
                            peaks[key] = max(peaks[key], int(value.split()[0]) * 1024)
            except (OSError, ValueError, IndexError):  # gone between poll and open, or no /proc
                pass
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    sampler.join()
    print(f"PEAKANON {peaks['RssAnon']}\nPEAKFILE {peaks['RssFile']}", file=sys.stderr)
    print(f"MAXRSS {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}", file=sys.stderr)
    return code


def child_query(path: str, sql: str) -> int:
    from dynamodb_cdc.connection import open_client

    client = open_client(f"chdb://{path}")
    try:
        print(json.dumps(client.query(sql).result_rows, default=str))
    finally:
        client.close()
    return 0


def child_clickhouse_s3(path: str, url: str) -> int:
    """Baseline (b): ClickHouse reads the gzip files itself (s3() table function, LineAsString)."""
    from dynamodb_cdc.connection import open_client

    client = open_client(f"chdb://{path}")
    try:
        client.command("CREATE DATABASE IF NOT EXISTS b")
        client.command("""CREATE TABLE b.lines (data_file_key String, line String,
            _ingested_at DateTime64(6, 'UTC') DEFAULT now64(6)) ENGINE = MergeTree ORDER BY _ingested_at""")
        client.command(f"INSERT INTO b.lines (data_file_key, line) SELECT _path, line "
                       f"FROM s3('{url}', 'testing', 'testing', 'LineAsString')")
        print(json.dumps({"rows": int(client.command("SELECT count() FROM b.lines"))}))
    finally:
        client.close()
    return 0


def child_naive(path: str, bucket: str, data_prefix: str) -> int:
    """Baseline (c): what a hand-written Lambda does: json.loads each line, typed rows, insert."""
    import gzip
    from decimal import Decimal

    import boto3

    from dynamodb_cdc.connection import open_client

    s3 = boto3.client("s3")
    client = open_client(f"chdb://{path}")
    client.command("CREATE DATABASE IF NOT EXISTS n")
    client.command("""CREATE TABLE n.items (pk String, name Nullable(String), age Nullable(Int32),
        balance Nullable(Decimal(18, 2)), active Nullable(Bool), city Nullable(String), tags Array(String),
        labels Array(String), note Nullable(String)) ENGINE = ReplacingMergeTree ORDER BY pk""")
    columns = ["pk", "name", "age", "balance", "active", "city", "tags", "labels", "note"]
    total = 0
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=data_prefix)
            for o in page.get("Contents", [])]
    for key in keys:
        body = gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        rows = []
        for raw in body.splitlines():
            it = json.loads(raw)["Item"]
            note = it.get("note", {})
            rows.append([
                it["pk"]["S"], it.get("name", {}).get("S"),
                int(it["age"]["N"]) if "age" in it else None,
                Decimal(it["balance"]["N"]) if "balance" in it else None,
                it.get("active", {}).get("BOOL"),
                it.get("address", {}).get("M", {}).get("city", {}).get("S"),
                [v["S"] for v in it.get("tags", {}).get("L", [])],
                it.get("labels", {}).get("SS", []),
                None if "NULL" in note else note.get("S"),
            ])
            if len(rows) == 100_000:
                client.insert("n.items", rows, column_names=columns)
                total += len(rows)
                rows = []
        if rows:
            client.insert("n.items", rows, column_names=columns)
            total += len(rows)
    client.close()
    print(json.dumps({"rows": total}))
    return 0


def child_latency(path: str, stream: str, count: int, interval: float, where: str = "raw") -> int:
    """Put-to-visible latency: the consumer (same code as consume-kinesis --follow) in a thread,
    records put one at a time (each a change of its own item), polled from a second client of the
    same engine: in stream_records (where="raw"), or in the typed current view (where="current",
    with the changes model as materialized views already created in ``path``)."""
    import threading

    import boto3

    from dynamodb_cdc.connection import open_client
    from dynamodb_cdc.kinesis import KinesisSource, kinesis_client, resolve_stream_arn
    from dynamodb_cdc.store import Store
    from dynamodb_cdc.streams import BatchLimits, ConsumeOptions, consume
    from generate import Change, item, kinesis_record, pk

    client = open_client(f"chdb://{path}")
    store = Store(client, RAW)
    store.ensure_schema()
    kc = kinesis_client()
    arn = resolve_stream_arn(kc, name=stream)
    stop = threading.Event()
    options = ConsumeOptions(follow=True, limits=BatchLimits(seconds=0.1))
    consumer = threading.Thread(target=consume, args=(KinesisSource(kc, arn), store, options), kwargs={"stop": stop})
    consumer.start()
    poller = open_client(f"chdb://{path}")
    deadline = time.monotonic() + 60
    while not int(poller.command(f"SELECT count() FROM {RAW}.stream_checkpoints")):
        if time.monotonic() > deadline:
            raise SystemExit("the consumer did not start")
        time.sleep(0.05)
    time.sleep(1.5)  # let the shard reach its idle polling rhythm
    producer = boto3.client("kinesis")
    put_at: dict[str, float] = {}
    seen: dict[str, float] = {}
    done_putting = threading.Event()

    visible = (f"SELECT sequence_number FROM {RAW}.stream_records" if where == "raw"
               else f"SELECT pk FROM {SCHEMA}.bench_items_current")

    def poll():
        while not (done_putting.is_set() and len(seen) >= len(put_at)) and time.monotonic() < deadline + 120:
            rows = poller.query(visible).result_rows
            now = time.time()
            for (s,) in rows:
                seen.setdefault(s, now)
            time.sleep(0.01)

    watcher = threading.Thread(target=poll)
    watcher.start()
    import random

    rng = random.Random(7)
    for i in range(count):
        data = kinesis_record(Change("MODIFY", i, 1_767_700_000_000_000 + i, item(i, rng)))
        t = time.time()
        r = producer.put_record(StreamName=stream, Data=data, PartitionKey=f"k{i}")
        put_at[r["SequenceNumber"] if where == "raw" else pk(i)] = t
        time.sleep(interval)
    done_putting.set()
    watcher.join()
    stop.set()
    consumer.join()
    latencies = sorted(seen[s] - t for s, t in put_at.items() if s in seen)
    poller.close()
    client.close()
    print(json.dumps({"records": count, "visible": len(latencies), "latencies": latencies}))
    return 0


def child_final(path: str, rows: int) -> int:
    """Current-state reads at scale: the current view (FINAL) against a plain scan of the same
    table, on a copy of the benchmark's changes model grown to ``rows`` items, then 10% of them
    updated (a tenth of those deleted) in a later insert, as incremental runs append them."""
    from dynamodb_cdc.connection import open_client

    client = open_client(f"chdb://{path}")
    cmd = client.command
    out: dict = {}

    def timed(sql: str, settings=None, repeat: int = 3):
        best = None
        result = None
        for _ in range(repeat):
            t = time.perf_counter()
            result = client.query(sql, settings=settings or {}).result_rows
            best = min(best or 1e9, time.perf_counter() - t)
        return best, result

    view = client.command(f"SELECT as_select FROM system.tables WHERE database = '{SCHEMA}' "
                          f"AND name = 'bench_items_current'")
    cmd("CREATE DATABASE IF NOT EXISTS f")
    cmd(f"CREATE TABLE f.seed ENGINE = MergeTree ORDER BY pk AS SELECT * FROM {SCHEMA}.bench_items_changes FINAL "
        f"WHERE _is_deleted = 0")
    per_copy = int(cmd("SELECT count() FROM f.seed"))
    scan = "SELECT count(), sum(age), sum(balance), uniqExact(city) FROM {rel}"
    layouts = {"unpartitioned": "", "partitioned": "PARTITION BY cityHash64(pk) % 8"}
    for label, partition in layouts.items():
        t = f"f.changes_{label}"
        cmd(f"CREATE TABLE {t} AS {SCHEMA}.bench_items_changes "
            f"ENGINE = ReplacingMergeTree(_version, _is_deleted) {partition} ORDER BY pk")
        cmd(f"CREATE VIEW f.current_{label} AS {view.replace(f'{SCHEMA}.bench_items_changes', t)}")
        cmd(f"SYSTEM STOP MERGES {t}")  # measure the parts as the inserts left them, then merged
        started = time.perf_counter()
        copy = 0
        while copy * per_copy < rows:
            cmd(f"INSERT INTO {t} SELECT * REPLACE (concat(pk, '#', '{copy}') AS pk) FROM f.seed "
                f"ORDER BY pk LIMIT {min(per_copy, rows - copy * per_copy)}")  # the same rows in both layouts
            copy += 1
        expected = int(cmd(f"SELECT countIf(cityHash64(pk) % 100 != 0) FROM {t}"))  # one row per key so far
        cmd(f"INSERT INTO {t} SELECT * REPLACE (_version + 1 AS _version, age + 1 AS age, "
            f"toUInt8(cityHash64(pk) % 100 = 0) AS _is_deleted, "
            f"if(cityHash64(pk) % 100 = 0, 'REMOVE', 'MODIFY') AS _event) "
            f"FROM {t} WHERE cityHash64(pk) % 10 = 0")
        out[f"{label}_fill_seconds"] = time.perf_counter() - started
        out[f"{label}_table_rows"] = int(cmd(f"SELECT count() FROM {t}"))
        out[f"{label}_parts_unmerged"] = int(cmd(f"SELECT count() FROM system.parts WHERE database = 'f' "
                                                  f"AND table = 'changes_{label}' AND active"))
        out[f"{label}_plain_scan_seconds"], _ = timed(scan.format(rel=t))
        settings = {"do_not_merge_across_partitions_select_final": 1} if partition else None
        out[f"{label}_final_unmerged_seconds"], got = timed(scan.format(rel=f"f.current_{label}"), settings)
        out[f"{label}_current_rows"] = int(got[0][0])
        assert out[f"{label}_current_rows"] == expected, (label, got, expected)
        started = time.perf_counter()
        cmd(f"SYSTEM START MERGES {t}")
        cmd(f"OPTIMIZE TABLE {t} FINAL")
        out[f"{label}_optimize_final_seconds"] = time.perf_counter() - started
        out[f"{label}_parts_merged"] = int(cmd(f"SELECT count() FROM system.parts WHERE database = 'f' "
                                                f"AND table = 'changes_{label}' AND active"))
        out[f"{label}_plain_scan_merged_seconds"], _ = timed(scan.format(rel=t))
        out[f"{label}_final_merged_seconds"], got = timed(scan.format(rel=f"f.current_{label}"), settings)
        assert int(got[0][0]) == out[f"{label}_current_rows"], (got, out)
    key = f"item-{7:09d}#0"
    out["point_lookup_final_seconds"], got = timed(f"SELECT * FROM f.current_unpartitioned WHERE pk = '{key}'")
    assert len(got) == 1, got
    started = time.perf_counter()
    cmd("CREATE TABLE f.current_table ENGINE = MergeTree ORDER BY pk AS SELECT * FROM f.current_unpartitioned")
    out["materialized_build_seconds"] = time.perf_counter() - started
    out["materialized_scan_seconds"], got = timed(scan.format(rel="f.current_table"))
    assert int(got[0][0]) == out["unpartitioned_current_rows"]
    assert out["partitioned_current_rows"] == out["unpartitioned_current_rows"]
    client.close()
    print(json.dumps(out))
    return 0


CHILDREN = {"_rss": lambda a: child_rss(a), "_query": lambda a: child_query(*a),
            "_clickhouse_s3": lambda a: child_clickhouse_s3(*a), "_naive": lambda a: child_naive(*a),
            "_latency": lambda a: child_latency(a[0], a[1], int(a[2]), float(a[3]), *a[4:]),
            "_final": lambda a: child_final(a[0], int(a[1]))}


# -- the driver --------------------------------------------------------------------------


class Timed:
    def __init__(self, seconds: float, stdout: str, stderr: str, rss: int | None,
                 private: int | None = None, mapped: int | None = None):
        self.seconds, self.stdout, self.stderr, self.rss = seconds, stdout, stderr, rss
        self.private, self.mapped = private, mapped  # peak RssAnon and RssFile (sampled)

    def json(self):
        return json.loads(self.stdout.strip().splitlines()[-1])


def run(argv: list[str], *, rss: bool = False, cwd=None, env=None) -> Timed:
    """Run a command to completion, timed from the outside; with rss, its peak memory too."""
    cmd = [PY, __file__, "_rss", *argv] if rss else argv
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env)
    seconds = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))} exited {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    if not rss:
        return Timed(seconds, p.stdout, p.stderr, None)
    last = {k: int(re.findall(rf"{k} (\d+)", p.stderr)[-1]) for k in ("MAXRSS", "PEAKANON", "PEAKFILE")}
    return Timed(seconds, p.stdout, p.stderr, last["MAXRSS"], last["PEAKANON"] or None, last["PEAKFILE"] or None)


def query(path: Path, sql: str):
    return run([PY, __file__, "_query", str(path), sql]).json()


class Bench:
    def __init__(self, items: int, changes: int, work: Path):
        self.n, self.m, self.work = items, changes, work
        self.small = max(1, items // 10)
        self.r: dict = {}
        self.figures: dict = {}

    # -- dbt -----------------------------------------------------------------------------
    def dbt(self, chdb: Path, *args: str, extra_vars: dict | None = None) -> Timed:
        profiles = self.work / "profiles" / chdb.name
        profiles.mkdir(parents=True, exist_ok=True)
        (profiles / "profiles.yml").write_text(
            f"dynamodb_cdc_bench:\n  target: bench\n  outputs:\n    bench:\n      type: chdb\n"
            f"      path: {chdb}\n      schema: {SCHEMA}\n      threads: 1\n")
        env = {**os.environ, "DBT_TARGET_PATH": str(self.work / "target" / chdb.name),
               "DBT_LOG_PATH": str(self.work / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        return run([str(BIN / "dbt"), *args, "--profiles-dir", str(profiles), "--project-dir", str(HERE / "dbt_project"),
                    "--vars", json.dumps({"dynamodb_cdc_raw_database": RAW, **(extra_vars or {})})],
                   cwd=HERE / "dbt_project", env=env)

    def model_seconds(self, chdb: Path) -> float:
        results = json.loads((self.work / "target" / chdb.name / "run_results.json").read_text())
        return sum(r["execution_time"] for r in results["results"] if r["unique_id"].endswith("bench_items_changes"))

    def load(self, chdb: Path, uri: str, *extra: str) -> Timed:
        return run([str(BIN / "dynamodb-cdc"), "load-export", uri, "--clickhouse-url", f"chdb://{chdb}",
                    "--no-progress", *extra], rss=True)

    def timed_load(self, name: str, uri: str, *extra: str, keep: bool = False) -> Path:
        """load-export into a fresh chDB directory, recording <name>_seconds and
        <name>_peak_rss_bytes; every item must land.  The directory is removed unless kept."""
        chdb = self.work / f"ch_{name}"
        t = self.load(chdb, uri, *extra)
        self.figures[f"{name}_seconds"] = t.seconds
        self.memory(name, t)
        assert query(chdb, f"SELECT count() FROM {RAW}.export_lines")[0][0] == self.n
        if not keep:
            shutil.rmtree(chdb, ignore_errors=True)
        return chdb

    def http_load(self, name: str, uri: str) -> None:
        """load-export with the engine in another process, as against a ClickHouse server: over
        HTTP into chdb_http (ClickHouse's HTTP interface over a chDB directory of its own).
        Records <name>_seconds, the loader's own peak memory (<name>_peak_*_bytes) and the
        serving process's (<name>_server_peak_rss_bytes, its VmHWM); every item must land."""
        from dynamodb_cdc.connection import open_client
        from dynamodb_cdc.testing import chdb_http

        server = chdb_http.start(str(self.work / f"ch_{name}"))
        try:
            t = run([str(BIN / "dynamodb-cdc"), "load-export", uri, "--clickhouse-url", server.url + "/",
                     "--no-progress"], rss=True)
            self.figures[f"{name}_seconds"] = t.seconds
            self.memory(name, t)
            status = Path(f"/proc/{server.pid}/status").read_text()
            self.figures[f"{name}_server_peak_rss_bytes"] = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) * 1024
            client = open_client(server.url + "/")
            assert client.command(f"SELECT count() FROM {RAW}.export_lines") == self.n
            client.close()
        finally:
            server.stop()
            shutil.rmtree(self.work / f"ch_{name}", ignore_errors=True)

    def memory(self, name: str, t: Timed) -> None:
        """<name>_peak_rss_bytes (from the kernel), <name>_peak_private_bytes (RssAnon) and
        <name>_peak_mapped_bytes (RssFile), sampled."""
        self.figures[f"{name}_peak_rss_bytes"] = t.rss
        self.figures[f"{name}_peak_private_bytes"] = t.private
        self.figures[f"{name}_peak_mapped_bytes"] = t.mapped

    def landing(self, b_url: str, uri: str) -> Path:
        """Baseline (b) and load-export, interleaved BENCH_REPEAT times on the same files:
        clickhouse_s3_seconds and load_seconds are their medians, load's peak memory the
        largest of its runs.  Returns the chDB directory of the last load (kept, for dbt)."""
        repeat = max(1, int(os.environ.get("BENCH_REPEAT", "3")))
        runs: dict[str, list[float]] = {"clickhouse_s3_seconds": [], "load_seconds": []}
        loads: list[Timed] = []
        chdb = self.work / "ch_load"
        for i in range(repeat):
            log(f"baseline (b): ClickHouse s3() LineAsString into MergeTree ({i + 1}/{repeat})")
            shutil.rmtree(self.work / "ch_b", ignore_errors=True)
            b = run([PY, __file__, "_clickhouse_s3", str(self.work / "ch_b"), b_url], rss=True)
            assert b.json()["rows"] == self.n, b.stdout
            runs["clickhouse_s3_seconds"].append(round(b.seconds, 4))
            log(f"ours: dynamodb-cdc load-export ({i + 1}/{repeat})")
            shutil.rmtree(chdb, ignore_errors=True)
            t = self.load(chdb, uri)
            assert query(chdb, f"SELECT count() FROM {RAW}.export_lines")[0][0] == self.n
            runs["load_seconds"].append(round(t.seconds, 4))
            loads.append(t)
        self.r["runs"] = runs
        self.figures["clickhouse_s3_seconds"] = statistics.median(runs["clickhouse_s3_seconds"])
        self.figures["load_seconds"] = statistics.median(runs["load_seconds"])
        self.figures["load_peak_rss_bytes"] = max(t.rss for t in loads)
        self.figures["load_peak_private_bytes"] = max(t.private or 0 for t in loads) or None
        self.figures["load_peak_mapped_bytes"] = max(t.mapped or 0 for t in loads) or None
        return chdb

    def raw_tables(self, chdb: Path) -> Timed:
        """Create the loader's raw tables, and nothing else, in a fresh chDB directory."""
        return run([PY, "-c", "import sys; from dynamodb_cdc.connection import open_client; "
                    "from dynamodb_cdc.store import Store; c = open_client('chdb://' + sys.argv[1]); "
                    f"Store(c, '{RAW}').ensure_schema(); c.close()", str(chdb)], rss=True)

    @staticmethod
    def view_tables() -> dict:
        """The bench project's dynamodb_cdc_tables with the table declared materialization: materialized_view."""
        import yaml

        tables = yaml.safe_load((HERE / "dbt_project" / "dbt_project.yml").read_text())["vars"]["dynamodb_cdc_tables"]
        tables["bench_items"]["materialization"] = "materialized_view"
        return tables

    def views(self, chdb: Path) -> Timed:
        """The raw tables, then a dbt run creating the bench table's changes model as materialized
        views on them (materialization: materialized_view), in a fresh chDB directory."""
        self.raw_tables(chdb)
        setup = self.dbt(chdb, "run", extra_vars={"dynamodb_cdc_tables": self.view_tables()})
        assert self.current_count(chdb) == 0
        return setup

    def materialized_view_on_landed(self, landed: Path, built: Path) -> None:
        """The materialized_view changes model created on a table already landed: dbt-clickhouse back-fills
        it, creates the views, and the post-hook types again the raw rows landed since shortly before the
        run (dynamodb_cdc_lookback_seconds), here all of them: the worst case, a first build right after a
        large load.  Then a second dbt run on the same views, which changes their query in place and types
        nothing again.  Both must leave the current view `built` has."""
        extra = {"dynamodb_cdc_tables": self.view_tables(), "dynamodb_cdc_lookback_seconds": 10 * 365 * 86400}
        f = self.figures
        for name in ("materialized_view_first_build", "materialized_view_rerun"):
            t = self.dbt(landed, "run", extra_vars=extra)
            assert self.current_checksum(landed) == self.current_checksum(built), name
            f[f"{name}_dbt_seconds"] = t.seconds
            f[f"{name}_model_seconds"] = self.model_seconds(landed)
        shutil.rmtree(landed, ignore_errors=True)

    def materialized_view(self, uri: str, built: Path) -> None:
        """End to end with the changes model as ClickHouse materialized views (the table declared
        with materialization: materialized_view): a dbt run on the empty raw tables creates the
        views once, as a deployment does (materialized_view_setup_dbt_seconds, not part of the
        end to end); from then on load-export alone takes an export to the current view, the
        typing done by the views inside the loader's own inserts.  Its current view must hold the
        same rows as the one `built` (the same export, through the incremental model and dbt run)."""
        chdb = self.work / "ch_materialized_view"
        setup = self.views(chdb)
        t = self.load(chdb, uri)
        assert query(chdb, f"SELECT count() FROM {RAW}.export_lines")[0][0] == self.n
        assert self.current_checksum(chdb) == self.current_checksum(built)
        f = self.figures
        f["materialized_view_setup_dbt_seconds"] = setup.seconds
        f["load_materialized_view_seconds"] = t.seconds
        self.memory("load_materialized_view", t)
        f["end_to_end_materialized_view_seconds"] = t.seconds
        shutil.rmtree(chdb, ignore_errors=True)

    def current_checksum(self, chdb: Path) -> list:
        """The current view's rows (all but _ingested_at, the time each landed) as a checksum, and their count."""
        return query(chdb, f"SELECT sum(cityHash64(*)), count() FROM (SELECT * EXCEPT (_ingested_at) "
                           f"FROM {SCHEMA}.bench_items_current)")[0]

    def current_count(self, chdb: Path) -> int:
        return query(chdb, f"SELECT count() FROM {SCHEMA}.bench_items_current")[0][0]

    # -- the run -------------------------------------------------------------------------
    def main(self) -> dict:
        import boto3

        import generate as g
        from dynamodb_cdc.testing.moto import moto_server

        f = self.figures
        with moto_server() as url:
            s3 = boto3.client("s3")
            bucket = "bench-exports"
            s3.create_bucket(Bucket=bucket)

            log(f"generating a full export of {self.n:,} items, one of {self.small:,}, and {self.m:,} changes")
            t = time.perf_counter()
            big_files = g.full_export_files(self.n, self.work / "files", "full")
            small_files = g.full_export_files(self.small, self.work / "files", "small")
            ch = g.changes(self.small, self.m)
            incr_files = g.write_data_files(g.incremental_lines(ch), self.work / "files", "incr")
            big = g.write_full(s3, bucket, "big", big_files)
            small = g.write_full(s3, bucket, "small", small_files)
            g.write_incremental(s3, bucket, "big", incr_files)
            g.write_incremental(s3, bucket, "small", incr_files)
            f["generate_seconds"] = time.perf_counter() - t
            self.r["sizes"] = {
                "items": self.n, "changes": self.m, "small_base_items": self.small, "data_files": len(big_files),
                "compressed_bytes": big.compressed_bytes,
                "expected_current_after_changes_big": ch.expected_count(self.n),
                "expected_current_after_changes_small": ch.expected_count(self.small),
            }

            # (a) the physical floor
            log("baseline (a): gzip -dc > /dev/null")
            a = run(["sh", "-c", "gzip -dc \"$@\" | wc -c", "sh", *map(str, big.local_files)])
            self.r["sizes"]["decompressed_bytes"] = int(a.stdout.split()[0])
            f["gzip_seconds"] = a.seconds

            # what the embedded engine costs before any data: import, open, create the raw tables
            idle = self.raw_tables(self.work / "ch_idle")
            self.memory("chdb_idle", idle)

            # (c) a hand-written loader
            data = big.data_keys[0].rsplit("/", 1)[0]
            log("baseline (c): json.loads per line, typed rows, clickhouse-connect insert")
            c = run([PY, __file__, "_naive", str(self.work / "ch_c"), bucket, data + "/"], rss=True)
            assert c.json()["rows"] == self.n, c.stdout
            f["naive_seconds"] = c.seconds
            self.memory("naive", c)

            # (b) ClickHouse reading the files itself, and ours, one after the other BENCH_REPEAT
            # times (default 3): each is recorded as its median (every run under "runs"), so one
            # slow run of either on a shared machine does not make the landing ratio
            chdb_big = self.landing(f"{url}/{bucket}/{data}/*.json.gz", big.uri)
            # peak memory against file size: the same items as one data file, 10x larger
            # (the ten gzip members concatenated, which is still one valid gzip file)
            log("ours: dynamodb-cdc load-export, the same items as one data file")
            one = self.work / "files" / "one-file.json.gz"
            with one.open("wb") as out:
                for path, _ in big_files:
                    out.write(path.read_bytes())
            one_file = g.write_full(s3, bucket, "onefile", [(one, self.n)])
            self.timed_load("load_one_file", one_file.uri)
            # README "Peak memory": chDB's allocator gives freed memory back at once
            log("ours: dynamodb-cdc load-export --low-memory")
            self.timed_load("load_low_memory", big.uri, "--low-memory")
            log("ours: dynamodb-cdc load-export --low-memory --parallel-files 1")
            self.timed_load("load_least_memory", big.uri, "--low-memory", "--parallel-files", "1")
            log("ours: dynamodb-cdc load-export --low-memory --parallel-files 1, the one data file")
            self.timed_load("load_least_memory_one_file", one_file.uri, "--low-memory", "--parallel-files", "1")
            log("ours: dynamodb-cdc load-export --server-side")
            chdb_server_side = self.timed_load("load_server_side", big.uri, "--server-side", keep=True)
            log("ours: dynamodb-cdc load-export over HTTP, the engine in another process (chdb_http)")
            self.http_load("load_http", big.uri)
            log("ours: dynamodb-cdc load-export over HTTP, the one data file")
            self.http_load("load_http_one_file", one_file.uri)
            log("ours: dbt deps, dbt run (full)")
            self.dbt(chdb_big, "deps")
            chdb_pre = self.work / "ch_ours_before_dbt"  # the landed data, for the warm-parse run below
            shutil.copytree(chdb_big, chdb_pre, symlinks=True)  # the engine links metadata/ to store/
            full = self.dbt(chdb_big, "run")
            f["dbt_full_seconds"] = full.seconds
            f["dbt_full_model_seconds"] = self.model_seconds(chdb_big)
            assert self.current_count(chdb_big) == self.n
            f["end_to_end_seconds"] = f["load_seconds"] + f["dbt_full_seconds"]
            # the same build again on the same landed data, with dbt's partial parsing warm (target/
            # kept from the run above, as a deployment that keeps it between runs has it): what the
            # cold parse costs.  Same directory and profile, so dbt reuses its parse.
            chdb_views_on_landed = self.work / "ch_views_on_landed"  # the landed data, for materialized views
            shutil.copytree(chdb_pre, chdb_views_on_landed, symlinks=True)
            log("ours: dbt run again on the same landed data (partial parsing warm)")
            shutil.rmtree(chdb_big)
            chdb_pre.rename(chdb_big)
            warm = self.dbt(chdb_big, "run")
            f["dbt_full_warm_parse_seconds"] = warm.seconds
            f["dbt_full_warm_parse_model_seconds"] = self.model_seconds(chdb_big)
            assert self.current_count(chdb_big) == self.n
            f["end_to_end_warm_parse_seconds"] = f["load_seconds"] + f["dbt_full_warm_parse_seconds"]
            # end to end with --server-side landing: its own cold dbt run (a target/ of its own)
            log("ours: dbt run (full) on what --server-side landed")
            server_side = self.dbt(chdb_server_side, "run")
            assert self.current_count(chdb_server_side) == self.n
            f["dbt_full_server_side_seconds"] = server_side.seconds
            f["end_to_end_server_side_seconds"] = f["load_server_side_seconds"] + server_side.seconds
            shutil.rmtree(chdb_server_side, ignore_errors=True)
            # end to end with the materialized-view changes model: load-export alone
            log("ours: end to end with the materialized_view changes model (dbt run once on empty tables, then load-export)")
            self.materialized_view(big.uri, chdb_big)
            log("ours: the materialized_view changes model created on the landed export, then a second dbt run")
            self.materialized_view_on_landed(chdb_views_on_landed, chdb_big)

            log("ours: incremental export on both bases, dbt run (incremental)")
            for label, chdb, base, prefix in (("small", self.work / "ch_small", self.small, "small"),
                                              ("big", chdb_big, self.n, "big")):
                if label == "small":  # the 1x base: its full export only, then the same dbt run
                    self.load(chdb, small.uri)
                    self.dbt(chdb, "run")
                inc_load = self.load(chdb, f"s3://{bucket}/{prefix}")
                inc = self.dbt(chdb, "run")
                f[f"incremental_{label}_load_seconds"] = inc_load.seconds
                f[f"incremental_{label}_dbt_seconds"] = inc.seconds
                f[f"incremental_{label}_model_seconds"] = self.model_seconds(chdb)
                got = self.current_count(chdb)
                assert got == ch.expected_count(base), (label, got, ch.expected_count(base))

            # current-state reads at scale, on a copy of the changes model grown to BENCH_FINAL_ROWS
            rows = int(os.environ.get("BENCH_FINAL_ROWS", "10000000"))
            log(f"current view (FINAL) against a plain scan, {rows:,} items + 10% updated")
            fin = run([PY, __file__, "_final", str(chdb_big), str(rows)]).json()
            self.r["sizes"]["final_rows"] = rows
            self.r["final"] = fin
            for k, v in fin.items():
                if k.endswith("_seconds"):
                    f[f"final_{k}"] = v

            # Kinesis
            self.kinesis(ch)
        return self.r

    def kinesis(self, ch) -> None:
        import boto3

        import generate as g

        f = self.figures
        kinesis = boto3.client("kinesis")
        name = "bench-cdc"
        shards = 4
        active_stream(kinesis, name, shards)
        log(f"Kinesis: putting {self.m:,} change records on {shards} shards")
        t = time.perf_counter()
        batch = []
        for c in ch.changes:
            batch.append({"Data": g.kinesis_record(c), "PartitionKey": g.pk(c.key)})
            if len(batch) == 500:
                kinesis.put_records(StreamName=name, Records=batch)
                batch = []
        if batch:
            kinesis.put_records(StreamName=name, Records=batch)
        f["kinesis_put_seconds"] = time.perf_counter() - t

        def bare_loop() -> float:
            t = time.perf_counter()
            got = 0
            for shard in kinesis.list_shards(StreamName=name)["Shards"]:
                it = kinesis.get_shard_iterator(StreamName=name, ShardId=shard["ShardId"],
                                                ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
                while it:
                    page = kinesis.get_records(ShardIterator=it, Limit=10_000)
                    got += len(page["Records"])
                    it = page.get("NextShardIterator")
                    if not page["Records"] and page.get("MillisBehindLatest") == 0:
                        break
            assert got == self.m, got
            return time.perf_counter() - t

        # moto serves the same calls more slowly the more it has served: the bare loop runs before
        # and after the consumer, and the baseline is the mean of the two.
        log("Kinesis: bare GetRecords loop")
        f["kinesis_bare_before_seconds"] = bare_loop()

        log("Kinesis: dynamodb-cdc consume-kinesis --until-caught-up")
        chdb = self.work / "ch_kinesis"
        p = run([str(BIN / "dynamodb-cdc"), "consume-kinesis", "--stream", name, "--clickhouse-url", f"chdb://{chdb}"],
                rss=True)
        f["kinesis_consumer_seconds"] = p.seconds
        f["kinesis_consumer_loop_seconds"] = float(re.findall(r"landed from .* in ([0-9.]+) s", p.stderr)[-1])
        self.memory("kinesis_consumer", p)

        log("Kinesis: bare GetRecords loop, again")
        f["kinesis_bare_after_seconds"] = bare_loop()
        f["kinesis_bare_seconds"] = (f["kinesis_bare_before_seconds"] + f["kinesis_bare_after_seconds"]) / 2
        landed = query(chdb, f"SELECT count(), uniqExact(shard_id, sequence_number) FROM {RAW}.stream_records")[0]
        assert landed == [self.m, self.m], landed

        log("Kinesis: put-to-visible latency (--follow, --batch-seconds 0.1)")
        active_stream(kinesis, "bench-latency", 1)
        count = int(os.environ.get("BENCH_LATENCY_RECORDS", "200"))
        f["latency_records"] = count
        self.latency("latency", "bench-latency", self.work / "ch_latency", count, "raw")
        # the same into the typed current view, the changes model as materialized views
        log("Kinesis: put-to-visible latency in the current view (the changes model as materialized views)")
        active_stream(kinesis, "bench-latency-views", 1)
        chdb = self.work / "ch_latency_views"
        self.views(chdb)
        self.latency("latency_current_view", "bench-latency-views", chdb, count, "current")

    def latency(self, name: str, stream: str, chdb: Path, count: int, where: str) -> None:
        """<name>_p50/_p95/_max_seconds: put-to-visible latency of ``count`` records put one every 50 ms."""
        lat = run([PY, __file__, "_latency", str(chdb), stream, str(count), "0.05", where]).json()
        assert lat["visible"] == count, lat
        values = lat["latencies"]
        q = statistics.quantiles(values, n=100)
        self.figures[f"{name}_p50_seconds"] = statistics.median(values)
        self.figures[f"{name}_p95_seconds"] = q[94]
        self.figures[f"{name}_max_seconds"] = max(values)


def active_stream(kinesis, name: str, shards: int) -> None:
    """Create a Kinesis stream and wait until it is ACTIVE."""
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    while kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
        time.sleep(0.1)


def machine() -> dict:
    from importlib.metadata import version

    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) * 1024
    return {"cpu_count": os.cpu_count(), "cpu_model": model, "ram_bytes": mem, "python": platform.python_version(),
            "chdb": version("chdb"), "clickhouse_connect": version("clickhouse-connect"),
            "dbt_core": version("dbt-core"), "moto": version("moto"), "platform": platform.platform()}


def derive(f: dict, n: int, m: int) -> tuple[dict, dict]:
    ratios = {
        "load_vs_clickhouse_s3": f["load_seconds"] / f["clickhouse_s3_seconds"],
        "load_vs_gzip": f["load_seconds"] / f["gzip_seconds"],
        "load_server_side_vs_clickhouse_s3": f["load_server_side_seconds"] / f["clickhouse_s3_seconds"],
        "clickhouse_s3_vs_gzip": f["clickhouse_s3_seconds"] / f["gzip_seconds"],
        "naive_vs_end_to_end": f["naive_seconds"] / f["end_to_end_seconds"],
        "naive_vs_end_to_end_warm_parse": f["naive_seconds"] / f["end_to_end_warm_parse_seconds"],
        "naive_vs_end_to_end_server_side": f["naive_seconds"] / f["end_to_end_server_side_seconds"],
        "naive_vs_end_to_end_materialized_view": f["naive_seconds"] / f["end_to_end_materialized_view_seconds"],
        "load_materialized_view_vs_load": f["load_materialized_view_seconds"] / f["load_seconds"],
        "materialized_view_first_build_vs_incremental_model": (f["materialized_view_first_build_model_seconds"]
                                                               / f["dbt_full_model_seconds"]),
        "materialized_view_rerun_vs_incremental_model": (f["materialized_view_rerun_model_seconds"]
                                                         / f["dbt_full_model_seconds"]),
        "naive_vs_load": f["naive_seconds"] / f["load_seconds"],
        "load_one_file_vs_ten_files": f["load_one_file_seconds"] / f["load_seconds"],
        "load_one_file_vs_ten_files_peak_rss": f["load_one_file_peak_rss_bytes"] / f["load_peak_rss_bytes"],
        "load_low_memory_vs_load": f["load_low_memory_seconds"] / f["load_seconds"],
        "load_low_memory_vs_load_peak_rss": f["load_low_memory_peak_rss_bytes"] / f["load_peak_rss_bytes"],
        "load_least_memory_vs_load": f["load_least_memory_seconds"] / f["load_seconds"],
        "load_least_memory_vs_load_peak_rss": f["load_least_memory_peak_rss_bytes"] / f["load_peak_rss_bytes"],
        "load_least_memory_one_file_vs_ten_files_peak_private": (f["load_least_memory_one_file_peak_private_bytes"]
                                                                  / f["load_least_memory_peak_private_bytes"]),
        "load_one_file_vs_ten_files_peak_private": (f["load_one_file_peak_private_bytes"]
                                                     / f["load_peak_private_bytes"]),
        "load_http_vs_load": f["load_http_seconds"] / f["load_seconds"],
        "load_http_one_file_vs_ten_files_peak_rss": f["load_http_one_file_peak_rss_bytes"] / f["load_http_peak_rss_bytes"],
        "incremental_big_vs_small_dbt": f["incremental_big_dbt_seconds"] / f["incremental_small_dbt_seconds"],
        "incremental_big_vs_small_model": f["incremental_big_model_seconds"] / f["incremental_small_model_seconds"],
        "kinesis_consumer_vs_bare": f["kinesis_bare_seconds"] / f["kinesis_consumer_seconds"],
        "kinesis_consumer_loop_vs_bare": f["kinesis_bare_seconds"] / f["kinesis_consumer_loop_seconds"],
    }
    for layout in ("unpartitioned", "partitioned"):
        plain = f[f"final_{layout}_plain_scan_seconds"]
        ratios[f"final_{layout}_unmerged_vs_plain_scan"] = f[f"final_{layout}_final_unmerged_seconds"] / plain
        ratios[f"final_{layout}_merged_vs_plain_scan"] = (f[f"final_{layout}_final_merged_seconds"]
                                                         / f[f"final_{layout}_plain_scan_merged_seconds"])
    ratios["final_materialized_vs_plain_scan"] = (f["final_materialized_scan_seconds"]
                                                  / f["final_unpartitioned_plain_scan_seconds"])
    rates = {
        "gzip_items_per_second": n / f["gzip_seconds"],
        "clickhouse_s3_items_per_second": n / f["clickhouse_s3_seconds"],
        "naive_items_per_second": n / f["naive_seconds"],
        "load_items_per_second": n / f["load_seconds"],
        "load_server_side_items_per_second": n / f["load_server_side_seconds"],
        "end_to_end_items_per_second": n / f["end_to_end_seconds"],
        "end_to_end_warm_parse_items_per_second": n / f["end_to_end_warm_parse_seconds"],
        "end_to_end_server_side_items_per_second": n / f["end_to_end_server_side_seconds"],
        "end_to_end_materialized_view_items_per_second": n / f["end_to_end_materialized_view_seconds"],
        "kinesis_bare_records_per_second": m / f["kinesis_bare_seconds"],
        "kinesis_consumer_records_per_second": m / f["kinesis_consumer_seconds"],
        "kinesis_consumer_loop_records_per_second": m / f["kinesis_consumer_loop_seconds"],
    }
    return ratios, rates


def targets(f: dict, ratios: dict, rates: dict) -> dict:
    def t(value, op, limit, what):
        ok = value <= limit if op == "<=" else value >= limit if op == ">=" else value < limit
        return {"value": value, "target": f"{op} {limit}", "pass": ok, "what": what}

    return {
        "landing_within_1_3x_clickhouse": t(ratios["load_vs_clickhouse_s3"], "<=", 1.3,
                                            "load-export seconds / ClickHouse s3() seconds"),
        "end_to_end_3x_faster_than_naive": t(ratios["naive_vs_end_to_end"], ">=", 3,
                                             "naive loader seconds / (load-export + dbt run) seconds"),
        "end_to_end_100k_items_per_second": t(rates["end_to_end_items_per_second"], ">=", 100_000,
                                              "items / (load-export + dbt run) seconds"),
        # the same two targets with the changes model as materialized views: the export reaches the
        # current view in load-export alone, once a dbt run has created the views
        "end_to_end_3x_faster_than_naive_materialized_view": t(
            ratios["naive_vs_end_to_end_materialized_view"], ">=", 3,
            "naive loader seconds / load-export seconds, the changes model as materialized views"),
        "end_to_end_100k_items_per_second_materialized_view": t(
            rates["end_to_end_materialized_view_items_per_second"], ">=", 100_000,
            "items / load-export seconds, the changes model as materialized views"),
        "loader_peak_memory_under_300_mb": t(f["load_peak_rss_bytes"] / 1e6, "<", 300,
                                             "peak RSS of load-export, MB (chDB alone, idle: see "
                                             "figures.chdb_idle_peak_rss_bytes)"),
        # the same target read as the loader's own memory (RssAnon: not the engine's library code,
        # which is mapped from disk, shared and reclaimable), in the mode built for the least
        # memory, for the larger of its two peaks (ten files, or the same items in one file)
        "loader_least_memory_private_under_300_mb": t(
            max(f["load_least_memory_peak_private_bytes"], f["load_least_memory_one_file_peak_private_bytes"]) / 1e6,
            "<", 300, "peak private memory (RssAnon, sampled every 10 ms) of load-export --low-memory "
                      "--parallel-files 1, MB, the larger of ten files and the same items in one file"),
        # the loader's own memory when the engine is elsewhere, as with a ClickHouse server: load-export
        # over HTTP into chdb_http, the larger of ten files and the same items in one file
        "loader_peak_memory_under_300_mb_engine_in_another_process": t(
            max(f["load_http_peak_rss_bytes"], f["load_http_one_file_peak_rss_bytes"]) / 1e6, "<", 300,
            "peak RSS of load-export over HTTP (the engine in a chdb_http process), MB, the larger of "
            "ten files and the same items in one file"),
        "incremental_on_10x_base_within_1_5x": t(ratios["incremental_big_vs_small_dbt"], "<=", 1.5,
                                                 "incremental dbt run seconds, 10x base / 1x base"),
        "kinesis_consumer_0_8x_bare_loop": t(ratios["kinesis_consumer_vs_bare"], ">=", 0.8,
                                             "consume-kinesis records/s (whole command) / bare GetRecords loop records/s"),
    }


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] in CHILDREN:
        return CHILDREN[sys.argv[1]](sys.argv[2:])
    n = int(os.environ.get("BENCH_ITEMS", "1000000"))
    m = int(os.environ.get("BENCH_CHANGES", "100000"))
    work = Path(tempfile.mkdtemp(prefix="dynamodb-cdc-bench-", dir=os.environ.get("BENCH_WORK_DIR")))
    started = time.perf_counter()
    log(f"BENCH_ITEMS={n:,} BENCH_CHANGES={m:,}; work directory {work}")
    try:
        bench = Bench(n, m, work)
        result = bench.main()
        f = bench.figures
        ratios, rates = derive(f, n, m)
        out = {
            "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": f"BENCH_ITEMS={n} BENCH_CHANGES={m} BENCH_FINAL_ROWS={result['sizes']['final_rows']} make bench",
            "machine": machine(),
            **result,
            "seconds": {k: round(v, 4) for k, v in f.items() if k.endswith("_seconds")},
            "figures": {k: v for k, v in f.items() if not k.endswith("_seconds")},
            "ratios": {k: round(v, 4) for k, v in ratios.items()},
            "rates": {k: round(v, 1) for k, v in rates.items()},
            "targets": targets(f, ratios, rates),
            "bench_wall_seconds": round(time.perf_counter() - started, 1),
        }
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    (HERE / "results.json").write_text(json.dumps(out, indent=2) + "\n")
    for name, t in out["targets"].items():
        log(f"{'PASS' if t['pass'] else 'MISS'} {name}: {t['value']:.3g} (target {t['target']})")
    log(f"wrote {HERE / 'results.json'} in {out['bench_wall_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
