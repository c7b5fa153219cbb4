"""The ``dynamodb-cdc`` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from . import __version__
from . import connection
from .connection import (
    URL_ENV, ClickHouseUnavailableError, EngineLockedError, open_client, parse_url,
)
from .errors import UsageError
from .push import PushError
from .request_export import ExportRequestError as RequestError
from .streams import StreamError

log = logging.getLogger("dynamodb_cdc")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"DYNAMODB_CDC_{name}", default)


def _number(env: str | None, kind=int, minimum=None):
    """The argparse type of a numeric option whose default is DYNAMODB_CDC_<env> (passed as text, so
    that argparse converts it with this; env None: an option with no variable): a value that is not a
    number, or below ``minimum``, is a usage error (exit 2) naming the option's variable, whether it
    came from there or the command line."""
    what = "a whole number" if kind is int else "a number"
    where = f" (on the command line, or in DYNAMODB_CDC_{env})" if env else ""

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}{where}") from None
        if minimum is not None and not value >= minimum:  # (NaN too)
            raise argparse.ArgumentTypeError(f"{text} is less than {minimum}{where}")
        return value

    convert.__name__ = kind.__name__
    return convert


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dynamodb-cdc",
        description="Land Amazon DynamoDB exports and change streams in ClickHouse, unparsed.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--clickhouse-url",
        default=None,
        help=f"chdb:///path/to/dir (embedded, default chdb://.chdb) or http(s)://user:password@host:port/db; "
        f"env {URL_ENV}",
    )
    common.add_argument(
        "--raw-database",
        default=_env("RAW_DATABASE", "dynamodb_raw"),
        help="database of the raw landing tables (default dynamodb_raw; env DYNAMODB_CDC_RAW_DATABASE)",
    )
    common.add_argument(
        "--wait-for-lock",
        type=_number("WAIT_FOR_LOCK", float, 0),
        default=_env("WAIT_FOR_LOCK", "0"),
        metavar="SECONDS",
        help="chDB: wait up to this long for another process to release the data directory, retrying with "
        "backoff (default 0: fail at once; env DYNAMODB_CDC_WAIT_FOR_LOCK)",
    )
    common.add_argument(
        "--low-memory",
        action="store_true",
        default=_env("LOW_MEMORY", "").lower() in ("1", "true", "yes"),
        help="chDB: give freed memory back at once (lower peak memory, about 1.2x the time; "
        "env DYNAMODB_CDC_LOW_MEMORY=1)",
    )
    common.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # how an export is loaded: load-export's options, and request-export --load's
    loading = argparse.ArgumentParser(add_help=False)
    loading.add_argument("--batch-rows", type=_number("BATCH_ROWS", int, 1), default=_env("BATCH_ROWS", "100000"),
                         help="lines per batch, each staged in a file of its own and checkpointed after its insert "
                         "(default 100000; env DYNAMODB_CDC_BATCH_ROWS)")
    loading.add_argument("--tmp-dir", default=_env("TMP_DIR"),
                         help="where verified data files are staged (default: the system's temporary directory; "
                         "env DYNAMODB_CDC_TMP_DIR)")
    loading.add_argument("--server-side", action="store_true",
                         help="ClickHouse reads each data file from S3 itself (s3() table function); no MD5 check, "
                         "whole-file retries (see README)")
    loading.add_argument("--parallel-files", type=_number("PARALLEL_FILES", int, 1),
                         default=_env("PARALLEL_FILES", "2"),
                         help="data files ClickHouse reads at once, in one statement (default 2; 1: each file on "
                         "its own; see README; env DYNAMODB_CDC_PARALLEL_FILES)")
    bar = loading.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None, help="always draw a bar")
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="plain log lines only")

    load = sub.add_parser(
        "load-export",
        parents=[common, loading],
        help="load DynamoDB S3 exports (full and incremental) into the raw tables",
        description="Load every export under an S3 prefix (oldest first), or one export folder. "
        "Loaded data files are skipped; an interrupted file resumes where it stopped.",
    )
    load.add_argument("uri", help="s3://bucket/prefix of the exports, or of one export folder")
    load.set_defaults(func=cmd_load_export)

    req = sub.add_parser(
        "request-export",
        parents=[common, loading],
        help="request the next export of a table (full, or the next incremental window), wait, load it",
        description="Requests a full export when none is loaded (or with --full), else the incremental "
        "window that continues the loaded exports up to now (15 minutes to 24 hours). "
        "Point-in-time recovery must be enabled on the table.",
    )
    req.add_argument("--table", required=True, help="DynamoDB table name or ARN")
    req.add_argument("--s3-bucket", required=True, help="bucket the export is written to")
    req.add_argument("--s3-prefix", default=None, help="prefix under the bucket (the same on every run)")
    req.add_argument("--full", action="store_true", help="request a full export even if one is loaded")
    req.add_argument("--wait", action="store_true", help="wait until the export completes")
    req.add_argument("--load", action="store_true", help="wait, then load the export (implies --wait)")
    req.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait (default 3600)")
    req.add_argument("--poll-seconds", type=float, default=30.0, help="seconds between status checks (default 30)")
    req.set_defaults(func=cmd_request_export)

    status = sub.add_parser(
        "status",
        parents=[common],
        help="what has landed, per DynamoDB table and source (exports, files, lines, shards, quarantine)",
    )
    status.add_argument("--json", action="store_true", help="machine-readable output for monitoring")
    status.set_defaults(func=cmd_status)

    scaffold = sub.add_parser(
        "scaffold",
        parents=[common],
        help="propose a table declaration and model stubs from the items already landed",
        description="Samples the landed items of one DynamoDB table, prints the YAML declaration to paste under "
        "vars: dynamodb_cdc_tables: (types that hold every sampled value exactly, each column commented with its "
        "type mix and missing rate), and writes <table>_changes.sql and <table>_current.sql.",
    )
    scaffold.add_argument("table", help="DynamoDB table name, as in the raw tables' table_name")
    scaffold.add_argument("--sample", type=_number(None, int, 1), default="10000", help="items to sample (default 10000)")
    scaffold.add_argument("--key", default=None,
                          help="PARTITION_KEY[,SORT_KEY] (default: the Keys of landed changes; required when only "
                          "full exports have landed)")
    scaffold.add_argument("--output-dir", default="models/dynamodb_cdc",
                          help="where to write the two model files (default models/dynamodb_cdc)")
    scaffold.add_argument("--no-models", action="store_true", help="only print the declaration")
    scaffold.add_argument("--force", action="store_true", help="overwrite existing model files")
    scaffold.set_defaults(func=cmd_scaffold)

    streaming = argparse.ArgumentParser(add_help=False)
    mode = streaming.add_mutually_exclusive_group()
    mode.add_argument("--until-caught-up", dest="follow", action="store_false", default=False,
                      help="read every shard to its current end, land, checkpoint, exit 0 (default; for schedulers)")
    mode.add_argument("--follow", dest="follow", action="store_true",
                      help="keep reading until SIGTERM/SIGINT, then land the pending batch, checkpoint, exit 0")
    streaming.add_argument("--batch-rows", type=_number("BATCH_ROWS"), default=_env("BATCH_ROWS", "100000"),
                           help="flush after this many records (default 100000)")
    streaming.add_argument("--batch-bytes", type=_number("BATCH_BYTES"), default=_env("BATCH_BYTES", str(20 << 20)),
                           help="... or this many bytes of record data (default 20 MiB)")
    streaming.add_argument("--batch-seconds", type=_number("BATCH_SECONDS", float), default=_env("BATCH_SECONDS", "5"),
                           help="... or when the oldest pending record is this old (default 5)")
    streaming.add_argument("--readers", type=_number("READERS"), default=_env("READERS", "4"),
                           help="shards read at once, each in its own thread (default 4; 1: one after the other)")
    streaming.add_argument("--poll-seconds", type=_number("POLL_SECONDS", float), default=_env("POLL_SECONDS", "0.2"),
                           help="seconds between the starts of two GetRecords on one shard (default 0.2: Kinesis "
                           "allows 5 a second per shard, shared by every reader of the stream)")

    kinesis = sub.add_parser(
        "consume-kinesis",
        parents=[common, streaming],
        help="land a Kinesis Data Streams for DynamoDB stream in stream_records, with per-shard checkpoints",
        description="Reads every shard (closed parents before their children), lands each record's data "
        "unparsed, and checkpoints each shard after its records are inserted. A rerun resumes after the "
        "checkpoints.",
    )
    target = kinesis.add_mutually_exclusive_group(required=True)
    target.add_argument("--stream", help="Kinesis data stream name")
    target.add_argument("--stream-arn", help="Kinesis data stream ARN")
    kinesis.add_argument("--start-position", choices=["trim_horizon", "latest", "at_timestamp"],
                         default="trim_horizon",
                         help="where to start when the stream has no checkpoint yet (default trim_horizon)")
    kinesis.add_argument("--start-timestamp", default=None, help="ISO 8601 time, with --start-position at_timestamp")
    kinesis.set_defaults(func=cmd_consume_kinesis)

    streams = sub.add_parser(
        "consume-streams",
        parents=[common, streaming],
        help="land a table's DynamoDB stream in stream_records, with per-shard checkpoints",
        description="Reads every shard of the stream (parents before children), lands each change record's "
        "JSON as received, and checkpoints each shard after its records are inserted.",
    )
    target = streams.add_mutually_exclusive_group(required=True)
    target.add_argument("--table", help="DynamoDB table name: reads its latest stream (LatestStreamArn)")
    target.add_argument("--stream-arn", help="DynamoDB stream ARN (arn:...:table/NAME/stream/LABEL)")
    streams.add_argument("--start-position", choices=["trim_horizon", "latest"], default="trim_horizon",
                         help="where to start when the stream has no checkpoint yet (default trim_horizon)")
    streams.set_defaults(func=cmd_consume_streams, start_timestamp=None)
    _add_push_parser(sub, common)
    return parser


def _add_push_parser(sub, common) -> None:
    def names(text: str) -> list[str]:
        return [n.strip() for n in text.split(",") if n.strip()]

    push = sub.add_parser(
        "push",
        parents=[common],
        help="write the rows of a ClickHouse relation (a dbt model) into a DynamoDB table",
        description="Streams the relation's rows, converts them exactly to DynamoDB items (rows DynamoDB would "
        "refuse go to push_quarantine with the reason), writes them with BatchWriteItem and records the run in "
        "push_runs. With --version-column, later runs write only the rows changed since the last successful run. "
        "The options can instead be declared on a dbt exposure (meta.dynamodb_push) and read with --exposure; "
        "options given on the command line win.",
    )
    push.add_argument("relation", nargs="?", default=None,
                      help="the ClickHouse relation: model (found in one database) or schema.model")
    push.add_argument("--exposure", default=None,
                      help="read the relation and options from this dbt exposure's meta.dynamodb_push")
    push.add_argument("--manifest", default="target/manifest.json",
                      help="dbt's manifest.json, for --exposure (default target/manifest.json)")
    push.add_argument("--table", default=None, help="the DynamoDB table to write")
    push.add_argument("--key", type=names, default=None,
                      help="partition key[,sort key] columns (default: the table's key schema)")
    push.add_argument("--version-column", default=None,
                      help="a column that grows as rows reach the relation (e.g. _ingested_at, updated_at): "
                      "later runs write only rows at or past the last successful run's highest value")
    push.add_argument("--full", action="store_true", help="write every row, whatever the watermark")
    push.add_argument("--sync-deletes", action="store_true", default=None,
                      help="also delete the items pushed before whose keys are no longer in the relation")
    push.add_argument("--allow-empty", action="store_true",
                      help="with --sync-deletes, let an empty relation delete every item it pushed (refused "
                      "otherwise: an empty model is more often a failed build than an emptied table)")
    push.add_argument("--retry-failed", action="store_true",
                      help="write again the rows set aside in push_quarantine (re-read from the relation by key)")
    push.add_argument("--columns", type=names, default=None, help="only these columns (the key is always written)")
    push.add_argument("--exclude", type=names, default=None, help="columns not to write (e.g. _version)")
    push.add_argument("--sets", type=names, default=None, help="Array columns to write as SS / NS / BS instead of L")
    push.add_argument("--binary", type=names, default=None, help="String columns to write as B instead of S")
    push.add_argument("--nulls", choices=["omit", "null"], default=None,
                      help="a NULL column: leave the attribute out (default omit) or write {NULL: true}")
    push.add_argument("--max-write-rate", type=float, default=None,
                      help="items per second, all writers together (default: unlimited)")
    push.add_argument("--writers", type=int, default=None, help="parallel BatchWriteItem threads (default 4)")
    push.add_argument("--via-import", default=None, metavar="S3_URI",
                      help="first load of a new table: write DynamoDB JSON to s3://bucket/prefix and call ImportTable")
    push.add_argument("--import-timeout", type=float, default=3600.0,
                      help="seconds to wait for ImportTable (default 3600)")
    push.add_argument("--poll-seconds", type=float, default=10.0,
                      help="seconds between DescribeImport calls (default 10)")
    push.set_defaults(func=cmd_push)


def cmd_push(args) -> int:
    import json

    from .push import PushOptions, declaration_from_manifest, dynamodb_client, push
    from .push_convert import ConvertOptions

    settings: dict = {}
    if args.exposure:
        try:
            with open(args.manifest, encoding="utf-8") as f:
                manifest = json.load(f)
        except OSError as ex:
            raise UsageError(f"--exposure needs dbt's manifest: cannot read {args.manifest} ({ex.strerror}); "
                             "run dbt parse, or give --manifest") from None
        settings = declaration_from_manifest(manifest, args.exposure)
    for name in ("relation", "table", "key", "version_column", "sync_deletes", "columns", "exclude", "sets",
                 "binary", "nulls", "max_write_rate", "writers"):
        value = getattr(args, name)
        if value is not None:
            settings[name] = value
    if not settings.get("relation") or not settings.get("table"):
        raise UsageError("name the relation and --table (or --exposure NAME declaring them)")
    options = PushOptions(
        relation=settings["relation"], table=settings["table"], key=settings.get("key"),
        version_column=settings.get("version_column"), full=args.full,
        sync_deletes=bool(settings.get("sync_deletes")), allow_empty=args.allow_empty, retry_failed=args.retry_failed,
        columns=settings.get("columns"), exclude=list(settings.get("exclude") or []),
        convert=ConvertOptions(nulls=settings.get("nulls") or "omit", sets=frozenset(settings.get("sets") or []),
                               binary=frozenset(settings.get("binary") or [])),
        max_write_rate=settings.get("max_write_rate"), writers=int(settings.get("writers") or 4),
        via_import=args.via_import, import_timeout=args.import_timeout, poll_seconds=args.poll_seconds,
    )
    target = parse_url(args.clickhouse_url)
    client = open_client(target)
    state_client = open_client(target)
    try:
        log.info("ClickHouse: %s, raw database %s", target.describe(), args.raw_database)
        result = push(client, state_client, dynamodb_client(), args.raw_database, options)
    finally:
        state_client.close()
        client.close()
    log.info(
        "push %s -> %s: %s; %s rows read, %s written, %s deleted, %s set aside%s",
        result.relation, result.table, result.status, f"{result.rows_read:,}", f"{result.rows_written:,}",
        f"{result.rows_deleted:,}", f"{result.rows_set_aside:,}",
        f"; watermark {result.watermark}" if result.watermark else "",
    )
    if result.rows_set_aside:
        log.error("%d row(s) set aside in %s.push_quarantine (see the reason column); fix the cause, then run "
                  "push --retry-failed", result.rows_set_aside, args.raw_database)
        return EXIT_FAILED
    return EXIT_OK


def cmd_load_export(args) -> int:
    from .load_export import load_exports
    from .s3export import S3Uri, s3_client
    from .store import Store

    options = _load_options(args)  # usage errors first
    S3Uri.parse(args.uri)
    target = parse_url(args.clickhouse_url)
    client = open_client(target)
    try:
        log.info("ClickHouse: %s, raw database %s", target.describe(), args.raw_database)
        store = Store(client, args.raw_database)
        result = load_exports(s3_client(), store, args.uri, options)
    finally:
        client.close()
    return _report_load(result)


def _load_options(args):
    from .load_export import LoadOptions

    return LoadOptions(batch_rows=args.batch_rows, tmp_dir=args.tmp_dir, progress=args.progress,
                       server_side=args.server_side, parallel_files=args.parallel_files)


def _report_load(result) -> int:
    """Log what load_exports did (a line per export, then its errors) and give the exit code:
    failed when an export failed or was left to the run that holds it."""
    for export in result.exports:
        if export.held:
            log.info("%s (%s): left to the run that holds it", export.export_arn, export.table_name)
            continue
        log.info(
            "%s (%s): %d files loaded, %d already loaded, %d failed; %s lines landed, %s quarantined in all its loaded files",
            export.export_arn, export.table_name, export.files_loaded, export.files_skipped, export.files_failed,
            f"{export.lines_landed:,}", f"{export.lines_quarantined:,}",
        )
    errors = result.errors + [e for export in result.exports if not export.held for e in export.errors]
    held = [e for export in result.exports if export.held for e in export.errors]
    for error in errors + held:
        log.error("%s", error)
    if errors:
        files_failed = any(export.files_failed for export in result.exports)
        log.error("%d error(s)%s. Fix the cause and rerun.", len(errors),
                  "; the files that passed verification were loaded" if files_failed else "")
    if held:
        log.error("%d export(s) left to the run that holds them: nothing to fix; the next run loads what is "
                  "left of them once that run has ended.", len(held))
    return EXIT_FAILED if errors or held else EXIT_OK


def cmd_request_export(args) -> int:
    import boto3

    from . import request_export as rx
    from .load_export import load_exports
    from .s3export import s3_client
    from .store import LOADED, Store

    options = _load_options(args)  # usage errors first
    dynamodb = boto3.client("dynamodb")
    table = dynamodb.describe_table(TableName=args.table)["Table"]
    table_name, table_arn = table["TableName"], table["TableArn"]
    target = parse_url(args.clickhouse_url)
    client = open_client(target)
    try:
        store = Store(client, args.raw_database)
        store.ensure_schema()
        windows = store.loaded_windows(table_name)
        plan = rx.plan_export(windows, rx.now_utc(), full=args.full)
        if plan is None:
            log.info("%s: the next incremental window is not 15 minutes wide yet; nothing to request", table_name)
            return EXIT_OK
        pending = [] if args.full else rx.unfinished_exports(dynamodb, table_arn, args.s3_bucket, args.s3_prefix, windows)
        if pending:
            # The next window starts where the loaded exports end: requesting it now would overlap these.
            for d in pending:
                log.info("%s: export %s is not loaded yet; the next window is requested once it is", table_name,
                         rx.describe_pending(d))
            if not (args.wait or args.load):
                log.info("%s: nothing requested; load it (load-export s3://%s/%s), or rerun with --load", table_name,
                         args.s3_bucket, args.s3_prefix or "")
                return EXIT_OK
            for d in pending:
                if d.get("ExportStatus") != "COMPLETED":
                    rx.wait(dynamodb, d["ExportArn"], timeout=args.timeout, poll=args.poll_seconds)
            if not args.load:
                return EXIT_OK
            result = load_exports(s3_client(), store, f"s3://{args.s3_bucket}/{args.s3_prefix or ''}", options)
            return _report_load(result)
        what = plan.export_type if plan.export_from is None else (
            f"{plan.export_type} {plan.export_from.isoformat()} .. {plan.export_to.isoformat()}")
        arn = rx.request(dynamodb, table_arn, args.s3_bucket, args.s3_prefix, plan)
        log.info("%s: requested %s (%s): %s", table_name, what, plan.reason, arn)
        if not (args.wait or args.load):
            return EXIT_OK
        description = rx.wait(dynamodb, arn, timeout=args.timeout, poll=args.poll_seconds)
        log.info("%s: export completed (%s items)", arn, description.get("ItemCount"))
        if not args.load:
            return EXIT_OK
        result = load_exports(s3_client(), store, rx.load_uri(description, args.s3_bucket, args.s3_prefix), options)
        if result.ok and store.export_status(arn) != LOADED:
            result.errors.append(f"{arn} completed but was not found under s3://{args.s3_bucket}/"
                                 f"{args.s3_prefix or ''} (no manifest-summary.json of it): nothing of it was loaded")
    finally:
        client.close()
    return _report_load(result)


def _landed_in(url):
    """The target of a command that reads what has landed (status, scaffold): an embedded one must be
    an existing directory, since opening a mistyped path would create an empty engine there."""
    target = parse_url(url)
    if target.embedded and not os.path.isdir(target.path):
        raise UsageError(f"no chDB data directory at {target.path}, so nothing has landed there: give the loader's "
                         f"--clickhouse-url (or {URL_ENV}); nothing was created (to start an empty engine there, make the "
                         "directory first)")
    return target


def cmd_status(args) -> int:
    from .status import collect, to_json, to_text
    from .store import Store

    target = _landed_in(args.clickhouse_url)
    client = open_client(target)
    try:
        log.info("ClickHouse: %s, raw database %s", target.describe(), args.raw_database)
        Store(client, args.raw_database).ensure_schema()
        report = collect(client, args.raw_database)
    finally:
        client.close()
    print(to_json(report) if args.json else to_text(report))
    return EXIT_OK


def cmd_scaffold(args) -> int:
    from pathlib import Path

    from .scaffold import ScaffoldError, scaffold
    from .store import Store

    client = open_client(_landed_in(args.clickhouse_url))
    try:
        Store(client, args.raw_database).ensure_schema()
        try:
            text, written = scaffold(
                client, args.raw_database, args.table, limit=args.sample,
                key=[k.strip() for k in args.key.split(",")] if args.key else None,
                output_dir=None if args.no_models else Path(args.output_dir), force=args.force)
        except ScaffoldError as e:
            log.error("scaffold %s: %s", args.table, e)
            return EXIT_FAILED
    finally:
        client.close()
    sys.stdout.write(text)
    for path in written:
        log.info("wrote %s", path)
    return EXIT_OK


def cmd_consume_kinesis(args) -> int:
    from .kinesis import KinesisSource, kinesis_client, resolve_stream_arn

    options = _consume_options(args)
    client = kinesis_client()
    arn = resolve_stream_arn(client, name=args.stream, arn=args.stream_arn)
    return _consume(args, KinesisSource(client, arn), options)


def cmd_consume_streams(args) -> int:
    from .dynamodb_streams import DynamoDBStreamsSource, resolve_stream_arn, streams_clients

    options = _consume_options(args)
    dynamodb, client = streams_clients()
    arn = args.stream_arn or resolve_stream_arn(dynamodb, args.table)
    return _consume(args, DynamoDBStreamsSource(client, arn), options)


def _consume_options(args):
    from .streams import BatchLimits, ConsumeOptions, StartPosition

    return ConsumeOptions(
        start=StartPosition.parse(args.start_position, args.start_timestamp),
        follow=args.follow,
        limits=BatchLimits(args.batch_rows, args.batch_bytes, args.batch_seconds),
        readers=args.readers,
        poll_interval=args.poll_seconds,
    )


def _consume(args, source, options) -> int:
    import threading

    from .store import Store
    from .streams import consume, stop_on_signals

    target = parse_url(args.clickhouse_url)
    client = open_client(target)
    try:
        log.info("ClickHouse: %s, raw database %s", target.describe(), args.raw_database)
        store = Store(client, args.raw_database)
        store.ensure_schema()
        if source.name == "dynamodb_streams":
            if getattr(args, "table", None):
                _warn_of_older_streams(store, source.stream_arn)
            options = _start_of_another_stream(store, source.stream_arn, options)
        with stop_on_signals(threading.Event()) as stop:
            result = consume(source, store, options, stop=stop)
    finally:
        client.close()
    if result.losses:
        log.error("%d loss(es): the stream dropped records before they were read (see above; each is a row in "
                  "quarantine). Everything read was landed and the shards go on; rerun to continue.",
                  len(result.losses))
        return EXIT_FAILED
    return EXIT_OK


def _streams_of_the_table(stream_arn: str) -> str:
    """What the ARNs of every DynamoDB stream of a stream's table start with (arn:...:table/NAME/stream/)."""
    return stream_arn.rsplit("/stream/", 1)[0] + "/stream/"


def _start_of_another_stream(store, stream_arn: str, options):
    """--start-position applies the first time a table's changes are read.  A stream of a table another
    stream of which was read before (the stream was disabled and enabled again, to change its view type)
    goes on from it: it is read from its beginning, since at `latest` the changes made between its
    enabling and this run would be skipped."""
    from dataclasses import replace

    from .streams import TRIM_HORIZON, StartPosition

    if options.start.kind == TRIM_HORIZON or store.stream_checkpoints("dynamodb_streams", stream_arn):
        return options
    other = store.client.query(
        f"SELECT stream_arn FROM {store.q}.stream_checkpoints FINAL WHERE source = 'dynamodb_streams' "
        "AND startsWith(stream_arn, {p:String}) AND stream_arn != {a:String} ORDER BY stream_arn DESC LIMIT 1",
        parameters={"p": _streams_of_the_table(stream_arn), "a": stream_arn}).result_rows
    if not other:
        return options
    log.info("%s: read from its beginning (TRIM_HORIZON), not %s: another stream of this table was read before "
             "(%s), and --start-position applies only the first time a table's changes are read",
             stream_arn, options.start.describe(), other[0][0])
    return replace(options, start=StartPosition(TRIM_HORIZON))


def _warn_of_older_streams(store, stream_arn: str) -> None:
    """--table follows the table's latest stream: after the stream was disabled and enabled again (to
    change its view type), what is left unread of the older one is read only by naming it."""
    table_prefix = _streams_of_the_table(stream_arn)
    rows = store.client.query(
        f"SELECT stream_arn, countIf(finished = 0) FROM {store.q}.stream_checkpoints FINAL "
        "WHERE source = 'dynamodb_streams' AND startsWith(stream_arn, {p:String}) AND stream_arn != {a:String} "
        "GROUP BY stream_arn HAVING countIf(finished = 0) > 0 ORDER BY stream_arn",
        parameters={"p": table_prefix, "a": stream_arn}).result_rows
    for older, shards in rows:
        log.warning("%s: an older stream of this table, %s, has %d shard(s) not read to their end; --table reads "
                    "the latest stream only: read what is left of it with --stream-arn %s (its records are kept "
                    "24 hours)", stream_arn, older, shards, older)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("botocore", "boto3", "urllib3", "clickhouse_connect"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Connection failures are retried and reported once by connection.open_client.
    for noisy in ("urllib3.connectionpool", "clickhouse_connect.driver._backend.http_sync"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    connection.LOCK_WAIT_SECONDS = max(0.0, getattr(args, "wait_for_lock", 0.0) or 0.0)
    if getattr(args, "low_memory", False):
        connection.low_memory()  # before any command loads chDB
    try:
        return args.func(args)
    except BrokenPipeError:  # stdout closed early (`status | head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (no second error at exit)
        return EXIT_OK
    except (EngineLockedError, ClickHouseUnavailableError, RequestError, StreamError, PushError) as ex:
        log.error("%s", ex)
        return EXIT_FAILED
    except UsageError as ex:  # (ConnectionConfigError too); any other ValueError is a failure
        log.error("%s", ex)
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.error("Interrupted; rerun the same command to resume where it stopped.")
        return 130
    except Exception as ex:  # an AWS or ClickHouse error: one line, with its type, no traceback
        name = type(ex).__name__
        code = getattr(ex, "response", {}).get("Error", {}).get("Code") if hasattr(ex, "response") else None
        log.error("%s%s: %s", name, f" ({code})" if code else "", ex)
        if os.environ.get("DYNAMODB_CDC_DEBUG"):
            raise
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
