"""``dynamodb-cdc status``: what has landed, per DynamoDB table and source, from ClickHouse alone."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from .dynamodb_streams import table_from_stream_arn
from .errors import UsageError
from .lease import HOLDER_COLUMNS, Holder
from .sql import ident
from .store import _utc


def collect(client, database: str) -> dict:
    """A JSON-ready report: per table, exports, data files, lines, stream shards and quarantine."""
    q = ident(database)
    tables: dict[str, dict] = {}

    def table(name: str) -> dict:
        return tables.setdefault(name, {
            "table": name,
            "exports": {},
            "data_files": {},
            "lines_landed": 0,
            "latest_export_time": None,
            "last_landed_at": None,
            "streams": [],
            "stream_records": 0,
            "stream_lag_seconds": None,
            "stream_millis_behind_latest": None,
            "last_change_at": None,
            "quarantined": 0,
            "quarantined_by_source": {},
            "loading_now": [],
        })

    for name, kind, status, n, latest in client.query(
        f"SELECT table_name, export_type, status, count(), max(export_time) FROM {q}.exports FINAL "
        f"GROUP BY table_name, export_type, status ORDER BY ALL"
    ).result_rows:
        t = table(name)
        t["exports"].setdefault(kind, {})[status] = n
        if status == "loaded":
            t["latest_export_time"] = _max(t["latest_export_time"], latest)
    for name, status, n in client.query(
        f"SELECT table_name, status, count() FROM {q}.export_files FINAL GROUP BY ALL ORDER BY ALL"
    ).result_rows:
        table(name)["data_files"][status] = n
    for raw_table, field in (("export_lines", "lines_landed"), ("stream_records", "stream_records")):
        for name, n, last in client.query(
            f"SELECT table_name, count(), max(_ingested_at) FROM {q}.{raw_table} GROUP BY table_name"
        ).result_rows:
            t = table(name)
            t[field] = n
            t["last_landed_at"] = _max(t["last_landed_at"], last)
    # Per shard and table (one stream may carry several tables): what landed, the newest record's
    # change time (ApproximateCreationDateTime: epoch milliseconds or microseconds from Kinesis,
    # seconds from DynamoDB Streams) and arrival time.
    per_shard = {
        (r[0], r[1], r[2]): r[3:]
        for r in client.query(
            f"SELECT stream_arn, shard_id, table_name, count(), max(arrival_time), "
            f"  max(JSONExtractFloat(data, 'dynamodb', 'ApproximateCreationDateTime')) AS t "
            f"FROM {q}.stream_records GROUP BY stream_arn, shard_id, table_name"
        ).result_rows
    }
    now = datetime.now(timezone.utc)
    shards = client.query(
        f"SELECT c.source, c.stream_arn, c.shard_id, c.sequence_number, c.finished, c.updated_at, "
        f"  c.millis_behind_latest, "
        f"  (SELECT groupUniqArray(table_name) FROM {q}.stream_records r WHERE r.stream_arn = c.stream_arn) "
        f"FROM {q}.stream_checkpoints AS c FINAL ORDER BY c.stream_arn, c.shard_id"
    ).result_rows
    for source, arn, shard, seq, finished, updated, behind, names in shards:
        for name in names or [_stream_table(source, arn)]:
            records, arrived, created = per_shard.get((arn, shard, name), (0, None, 0))
            newest = _epoch(created)
            lag = None
            if not finished and (newest or arrived):
                lag = round(max(0.0, (now - (newest or _utc(arrived))).total_seconds()), 3)
            t = table(name or "(no records yet)")
            t["streams"].append({
                "source": source, "stream_arn": arn, "shard_id": shard, "checkpoint": seq,
                "finished": bool(finished), "updated_at": _utc(updated), "records": records,
                "newest_change_at": newest, "newest_arrival_at": _utc(arrived) if records else None,
                "lag_seconds": lag,
                # Kinesis: MillisBehindLatest of the last page read when the checkpoint was written
                "millis_behind_latest": None if finished or behind is None else int(behind),
            })
            if newest:
                t["last_change_at"] = _max(t["last_change_at"], newest)
    for name, source, n in client.query(
        f"SELECT table_name, source, count() FROM {q}.quarantine GROUP BY table_name, source ORDER BY ALL"
    ).result_rows:
        t = table(name or "(unknown table)")
        t["quarantined"] += n
        t["quarantined_by_source"][source] = n
    # Exports a run is loading now, streams a consumer is reading now: live leases (lease.py); a raw
    # database from before leases has none.
    reading, pushing = [], {}
    if client.command(f"EXISTS TABLE {q}.leases"):
        for scope, name, *row in client.query(
            f"SELECT l.scope, e.table_name, {HOLDER_COLUMNS} "  # (the joined side has none of these)
            f"FROM {q}.leases AS l FINAL "
            f"LEFT JOIN (SELECT export_arn, any(table_name) AS table_name FROM {q}.exports FINAL GROUP BY export_arn) AS e "
            f"  ON e.export_arn = substring(l.scope, 8) "  # after 'export:'
            f"WHERE l.released = 0 ORDER BY ALL"
        ).result_rows:
            h = Holder.of_row(row)
            if not h.live():
                continue
            kind, _, arn = scope.partition(":")
            held = {"by": h.command, "host": h.host, "pid": h.pid, "since": h.acquired_at,
                    "renewed_seconds_ago": round(h.renewed_seconds_ago, 1)}
            if kind == "stream":
                reading.append({"stream_arn": arn, **held})
            elif kind == "push":  # push:<region>/<DynamoDB table>
                pushing.setdefault(arn.split("/", 1)[-1], []).append(held)
            elif kind == "export" and name:  # (its holder records the export right after taking it)
                table(name)["loading_now"].append({"export_arn": arn, **held})
    pushes = _pushes(client, q, pushing)
    for t in tables.values():
        lags = [s["lag_seconds"] for s in t["streams"] if s["lag_seconds"] is not None]
        t["stream_lag_seconds"] = max(lags) if lags else None
        behind = [s["millis_behind_latest"] for s in t["streams"] if s["millis_behind_latest"] is not None]
        t["stream_millis_behind_latest"] = max(behind) if behind else None
        t["last_change_at"] = _max(t["last_change_at"], t["latest_export_time"])
    return {"raw_database": database, "generated_at": now, "tables": [tables[k] for k in sorted(tables)],
            "consumers_now": reading, "pushes": pushes}


def _pushes(client, q: str, pushing: dict[str, list]) -> list[dict]:
    """Per relation pushed and DynamoDB table (push_runs, push_quarantine; none before any push):
    its last run, when a run last succeeded, the rows set aside and not yet written, and who is
    pushing to the table now."""
    if not client.command(f"EXISTS TABLE {q}.push_runs"):
        return []
    open_entries = {(r[0], r[1]): int(r[2]) for r in client.query(
        f"SELECT relation, target_table, count() FROM {q}.push_quarantine FINAL WHERE status = 'open' GROUP BY ALL"
    ).result_rows}
    out = []
    for relation, target, last, succeeded in client.query(
        f"SELECT relation, target_table, "
        f"  argMax((run_id, mode, status, started_at, finished_at, rows_read, rows_written, rows_deleted, "
        f"          rows_set_aside, watermark, error), started_at), "
        f"  maxIf(finished_at, status IN ('succeeded', 'partial')) "
        f"FROM {q}.push_runs FINAL GROUP BY relation, target_table ORDER BY ALL"
    ).result_rows:
        run_id, mode, status, started, finished, read, written, deleted, set_aside, watermark, error = last
        out.append({
            "relation": relation, "table": target,
            "last_run": {"run_id": run_id, "mode": mode, "status": status, "started_at": _utc(started),
                         "finished_at": _utc(finished), "rows_read": read, "rows_written": written,
                         "rows_deleted": deleted, "rows_set_aside": set_aside, "watermark": watermark,
                         "error": error.splitlines()[0][:500] if error else ""},
            "last_succeeded_at": _utc(succeeded),
            "set_aside_open": open_entries.get((relation, target), 0),
            "pushing_now": pushing.get(target, []),
        })
    return out


def _stream_table(source: str, arn: str) -> str:
    """The table of a stream with no record landed: a DynamoDB stream's ARN names it; a Kinesis
    stream may carry several ('')."""
    if source != "dynamodb_streams":
        return ""
    try:
        return table_from_stream_arn(arn)
    except UsageError:
        return ""


def _epoch(value) -> datetime | None:
    """ApproximateCreationDateTime as a time: epoch milliseconds or microseconds (Kinesis, by its
    ApproximateCreationDateTimePrecision) or seconds (DynamoDB Streams), told apart by size."""
    if not value:
        return None
    value = float(value)  # seconds may carry a fraction on the wire; micro- and milliseconds are exact in a double
    return datetime.fromtimestamp(value / 1e6 if value > 1e14 else value / 1e3 if value > 1e11 else value, timezone.utc)


def _max(a, b):
    a, b = _utc(a), _utc(b)
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))


def _held_by(h: dict) -> str:
    """Who holds an export or a stream (a loading_now or consumers_now entry), as text."""
    return (f"by {h['by']} (process {h['pid']} on {h['host']}) since {h['since']} UTC, "
            f"renewed {h['renewed_seconds_ago']:.0f} s ago")


def to_text(report: dict) -> str:
    consumers = [f"reading now    {h['stream_arn']} {_held_by(h)}" for h in report["consumers_now"]]
    pushes = []
    for p in report["pushes"]:
        r = p["last_run"]
        pushes.append(f"push {p['relation']} -> {p['table']}: last run {r['status']} ({r['mode']}, started "
                      f"{r['started_at']}), {r['rows_written']:,} written, {r['rows_deleted']:,} deleted, "
                      f"{r['rows_set_aside']:,} set aside" + (f": {r['error']}" if r["error"] else ""))
        pushes.append(f"  last succeeded {p['last_succeeded_at'] or 'never'}; {p['set_aside_open']:,} row(s) set "
                      "aside and not written since (push --retry-failed)")
        pushes += [f"  pushing now   {_held_by(h)}" for h in p["pushing_now"]]
    if not report["tables"]:
        return "\n".join([f"Nothing has landed in {report['raw_database']} yet."] + consumers + pushes)
    out = []
    for t in report["tables"]:
        out.append(f"{t['table']}")
        exports = ", ".join(
            f"{kind.lower().replace('_', ' ')}s: " + ", ".join(f"{n} {status}" for status, n in sorted(s.items()))
            for kind, s in sorted(t["exports"].items())
        )
        if exports:
            out.append(f"  exports       {exports}")
        if t["data_files"]:
            out.append("  data files    " + ", ".join(f"{n} {s}" for s, n in sorted(t["data_files"].items())))
        for h in t["loading_now"]:
            out.append(f"  loading now   {h['export_arn']} {_held_by(h)}")
        out.append(f"  lines landed  {t['lines_landed']:,}   stream records {t['stream_records']:,}   "
                   f"quarantined {t['quarantined']:,}")
        if t["latest_export_time"]:
            out.append(f"  latest loaded export as of {t['latest_export_time']}")
        if t["quarantined_by_source"]:
            out.append("  quarantined   " + ", ".join(f"{n:,} from {s}" for s, n in t["quarantined_by_source"].items()))
        if t["last_landed_at"]:
            out.append(f"  last row landed at {t['last_landed_at']}")
        if t["last_change_at"]:
            out.append(f"  last change seen {t['last_change_at']}")
        if t["stream_lag_seconds"] is not None:
            out.append(f"  stream lag    {t['stream_lag_seconds']:,.1f} s behind now (newest change landed, worst shard)")
        for s in t["streams"]:
            state = "finished" if s["finished"] else f"at {s['checkpoint'] or '(start)'}"
            lag = f", lag {s['lag_seconds']:,.1f} s" if s["lag_seconds"] is not None else ""
            if s["millis_behind_latest"] is not None:
                lag += f", {s['millis_behind_latest']:,} ms behind latest when checkpointed"
            out.append(f"  {s['source']} {s['shard_id']}: {state}, {s['records']:,} records{lag} "
                       f"(updated {s['updated_at']})")
    return "\n".join(out + consumers + pushes)
