"""``dynamodb-cdc status``: what has landed, per DynamoDB table and source, from ClickHouse alone."""

from __future__ import annotations

import json
from datetime import datetime

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
            "quarantined": 0,
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
    shards = client.query(
        f"SELECT c.source, c.stream_arn, c.shard_id, c.sequence_number, c.finished, c.updated_at, "
        f"  (SELECT groupUniqArray(table_name) FROM {q}.stream_records r WHERE r.stream_arn = c.stream_arn) "
        f"FROM {q}.stream_checkpoints AS c FINAL ORDER BY c.stream_arn, c.shard_id"
    ).result_rows
    for source, arn, shard, seq, finished, updated, names in shards:
        for name in names or [""]:
            table(name or "(no records yet)")["streams"].append({
                "source": source, "stream_arn": arn, "shard_id": shard, "checkpoint": seq,
                "finished": bool(finished), "updated_at": _utc(updated),
            })
    for name, n in client.query(
        f"SELECT table_name, count() FROM {q}.quarantine GROUP BY table_name"
    ).result_rows:
        table(name or "(unknown table)")["quarantined"] = n
    return {"raw_database": database, "tables": [tables[k] for k in sorted(tables)]}


def _max(a, b):
    a, b = _utc(a), _utc(b)
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))


def to_text(report: dict) -> str:
    if not report["tables"]:
        return f"Nothing has landed in {report['raw_database']} yet."
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
        out.append(f"  lines landed  {t['lines_landed']:,}   stream records {t['stream_records']:,}   "
                   f"quarantined {t['quarantined']:,}")
        if t["latest_export_time"]:
            out.append(f"  latest loaded export as of {t['latest_export_time']}")
        if t["last_landed_at"]:
            out.append(f"  last row landed at {t['last_landed_at']}")
        for s in t["streams"]:
            state = "finished" if s["finished"] else f"at {s['checkpoint'] or '(start)'}"
            out.append(f"  {s['source']} {s['shard_id']}: {state} (updated {s['updated_at']})")
    return "\n".join(out)
