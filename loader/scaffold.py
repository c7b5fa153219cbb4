"""``dynamodb-cdc scaffold TABLE``: a table declaration and model stubs from the raw rows already landed.

Like dbt-codegen for sources: it samples the landed items of one DynamoDB table, spread over all
of them by a hash of each line (full-export
``Item``, incremental ``NewImage``, stream ``dynamodb.NewImage``) in ClickHouse, counts per
attribute which type tags occur and how often the attribute is missing or NULL, and proposes for
each attribute the narrowest type of the package's type map (README, "Types") that holds every
sampled value exactly: never a type the sample would overflow.  It prints the YAML to put under
``vars: dynamodb_cdc_tables:`` (each column commented with its type mix and missing rate) and
writes ``<table>_changes.sql`` / ``<table>_current.sql``.

Inference is pure (``infer_column``) and tested on its own; only ``sample`` talks to ClickHouse.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation, localcontext
from pathlib import Path

from .sql import ident, literal

NUMBER_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,6})?")
# Integer types, narrowest useful first: Int64 is the default for integers; wider ones only when needed.
INTEGER_TYPES = [("Int64", -(2 ** 63), 2 ** 63 - 1), ("UInt64", 0, 2 ** 64 - 1), ("Int128", -(2 ** 127), 2 ** 127 - 1),
                 ("UInt128", 0, 2 ** 128 - 1), ("Int256", -(2 ** 255), 2 ** 255 - 1), ("UInt256", 0, 2 ** 256 - 1)]
# Columns the changes model adds itself: an attribute with one of these names gets another column name.
# The names the changes model uses for its own columns (macro _reserved_names, checked by a test to be
# the same), and its per-column ones (_av_<n>, _tv_<n>): a declared column cannot take them.
RESERVED = {"_other_attributes", "_version", "_is_deleted", "_ttl_deleted", "_changed_at", "_event", "_source",
            "_source_ref", "_conversion_errors", "_ingested_at", "_keys", "_item", "_has_item", "_usable", "_key_ok",
            "_failed_attributes", "_time_n", "_time_us", "_changed_n", "_rank", "_seq", "_ttl", "_t_raw", "_precision",
            "_in_us"}
RESERVED_PATTERN = re.compile(r"_[at]v_[0-9]+\Z")
LOW_CARDINALITY_MAX = 100


class ScaffoldError(Exception):
    """A clear, one-line reason the scaffold cannot be written."""


@dataclass
class AttributeStats:
    """What the sample holds for one attribute."""

    name: str
    tags: dict[str, int] = field(default_factory=dict)  # type tag -> items having it
    numbers: list[str] = field(default_factory=list)  # distinct N texts (and NS members, S texts that are numbers)
    strings_distinct: int = 0
    strings_uuid: int = 0  # S values that are UUIDs
    strings_numeric: int = 0  # S values that are numbers
    element_tags: set[str] = field(default_factory=set)  # tags of L elements and M values


@dataclass
class Column:
    name: str
    attribute: str
    type: str
    comment: str
    binary: bool = False


def parse_number(text: str) -> Decimal | None:
    if not NUMBER_RE.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def number_type(texts: list[str]) -> tuple[str, str]:
    """The narrowest declared type holding every number exactly, and a note; ('String', why) if none does."""
    with localcontext() as exact:
        exact.prec = 400  # normalize() and friends round to the context: never here
        return _number_type(texts)


def _number_type(texts: list[str]) -> tuple[str, str]:
    values = [parse_number(t) for t in texts]
    if not values or any(v is None for v in values):
        return "String", "not all numbers"
    shape = [_digits(v) for v in values]
    integer_digits, scale = max(i for i, _ in shape), max(f for _, f in shape)  # scale: decimals after the point
    if scale == 0:
        if integer_digits > len(str(INTEGER_TYPES[-1][2])):  # (no int() of 1E+999999: slow, and too wide anyway)
            return "String", "integers beyond UInt256: kept as number text"
        ints = [int(v) for v in values]
        lo, hi = min(ints), max(ints)
        for name, tlo, thi in INTEGER_TYPES:
            if tlo <= lo and hi <= thi:
                return name, f"integers {lo}..{hi}"
        return "String", "integers beyond UInt256: kept as number text"
    for precision in (38, 76):
        if scale <= precision and integer_digits <= precision - scale:
            return f"Decimal({precision}, {scale})", f"up to {integer_digits} integer and {scale} fractional digits"
    return "String", f"{integer_digits} integer and {scale} fractional digits exceed Decimal256: kept as number text"


def _digits(v: Decimal) -> tuple[int, int]:
    """(integer digits, fractional digits) of v, counted on its own digits (trailing zeros do not count): no
    rounding to the context's precision (an S of 500 digits), no str() of a huge int (past 4300 digits)."""
    _, digits, exponent = v.as_tuple()
    text = "".join(map(str, digits)).rstrip("0")
    if not text:
        return 0, 0
    exponent += len(digits) - len(text)
    return max(0, len(text) + exponent), max(0, -exponent)


def infer_column(stats: AttributeStats, sampled: int) -> tuple[str, str, bool]:
    """(declared type, comment, binary) for one attribute."""
    present = sum(stats.tags.values())
    tags = {t: n for t, n in stats.tags.items() if t != "NULL"}
    mix = ", ".join(f"{t} {100 * n / present:.0f}%" for t, n in sorted(stats.tags.items(), key=lambda x: -x[1]))
    missing = 100 * (sampled - present) / sampled if sampled else 0
    comment = f"{mix}; missing in {missing:.0f}% of items"
    binary = False
    only = next(iter(tags)) if len(tags) == 1 else None
    if not tags:
        return "String", comment + "; only NULL seen", binary
    if only == "S":
        if stats.strings_uuid == tags["S"]:
            return "UUID", comment, binary
        if stats.strings_distinct <= LOW_CARDINALITY_MAX and tags["S"] >= 10 * stats.strings_distinct:
            return "LowCardinality(String)", comment + f"; {stats.strings_distinct} distinct values", binary
        return "String", comment, binary
    if only == "N" or (set(tags) == {"N", "S"} and stats.strings_numeric == tags["S"]):
        ch_type, note = number_type(stats.numbers)
        drift = "; numbers in S too (type drift), read the same way" if "S" in tags else ""
        return ch_type, f"{comment}; {note}{drift}", binary
    if only == "BOOL":
        return "Bool", comment, binary
    if only == "B":
        return "String", comment + "; base64 (add binary: bytes to decode)", binary
    if only == "SS":
        return "Array(String)", comment, binary
    if only == "BS":
        return "Array(String)", comment + "; base64 members (add binary: bytes to decode)", binary
    if only == "NS":
        element, note = number_type(stats.numbers)
        return f"Array({element})", f"{comment}; members: {note}", binary
    if only == "L" and stats.element_tags <= {"S"} and stats.element_tags:
        return "Array(String)", comment + "; lists of S", binary
    if only == "M" and stats.element_tags <= {"S"} and stats.element_tags:
        return "Map(String, String)", comment + "; maps of S", binary
    if only in ("L", "M"):
        return "String", comment + "; kept as DynamoDB JSON text", binary
    return "String", comment + "; mixed types: String keeps every tag (numbers as text, maps and lists as JSON)", binary


def column_name(attribute: str, taken: set[str]) -> str:
    """A column name for an attribute: as is when dbt-clickhouse can write it, else a cleaned one."""
    name = attribute
    if '"' in name or "\\" in name or not name.strip():
        name = re.sub(r'["\\\s]+', "_", name).strip("_") or "attribute"
    if name in RESERVED or RESERVED_PATTERN.match(name):
        name = name.lstrip("_") + "_attr"
    base, i = name, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def model_name(table: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", table)
    return name if re.match(r"[A-Za-z_]", name) else f"t_{name}"


def sample_sql(db: str, table: str, limit: int) -> str:
    t = literal(table)
    # A spread sample: the lines with the lowest hashes of all landed ones, not the first read (the
    # oldest export's first file, which may not hold what later items do).  Each source keeps the lines
    # of its lowest `limit` distinct hashes (a set of the hashes, then a second read of the lines).
    n = int(limit)

    def lowest(doc: str, path: str, hashed: str, source: str) -> str:
        # the lines of the `n` lowest distinct hashes, one line each: full exports repeat an unchanged
        # item as the same line, and copies of one line would otherwise fill the sample
        return (f"(SELECT {doc} AS doc, {literal(path)} AS path, cityHash64({hashed}) AS h FROM {source} "
                f"AND h IN (SELECT DISTINCT cityHash64({hashed}) AS k FROM {source} ORDER BY k LIMIT {n}) LIMIT 1 BY h)")

    items = "\n        UNION ALL\n        ".join([
        lowest("line", "Item", "line", f"{ident(db)}.export_lines WHERE table_name = {t} AND export_type = 'FULL_EXPORT'"),
        lowest("line", "NewImage", "line", f"{ident(db)}.export_lines WHERE table_name = {t} "
               "AND export_type = 'INCREMENTAL_EXPORT' AND JSONType(line, 'NewImage') = 'Object'"),
        lowest("JSONExtractRaw(data, 'dynamodb')", "NewImage", "data", f"{ident(db)}.stream_records "
               f"WHERE (table_name = {t} OR JSONExtractString(data, 'tableName') = {t}) "
               "AND JSONType(data, 'dynamodb', 'NewImage') = 'Object'"),
    ])
    return f"""
WITH sample AS (SELECT JSONExtractRaw(doc, path) AS item FROM ({items}) ORDER BY h LIMIT {n}),
kvs AS (
    SELECT kv.1 AS attr, JSONExtractKeys(kv.2)[1] AS tag, kv.2 AS av
    FROM (SELECT arrayJoin(JSONExtractKeysAndValuesRaw(item)) AS kv FROM sample)
)
SELECT attr, tag, count() AS n,
       groupUniqArrayArray(multiIf(  -- (every distinct number of the sample: a cap would type only those kept)
           tag = 'N', [JSONExtractString(av, 'N')],
           tag = 'NS', JSONExtract(av, 'NS', 'Array(String)'),
           tag = 'S' AND match(JSONExtractString(av, 'S'), '^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]{{1,6}})?$'),
               [JSONExtractString(av, 'S')],
           [])) AS numbers,
       uniqExactIf(JSONExtractString(av, 'S'), tag = 'S') AS distinct_strings,
       -- (lowercase only: ClickHouse writes a UUID in lowercase, so other text would not read back the same)
       countIf(tag = 'S' AND match(JSONExtractString(av, 'S'),
           '^[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}$')) AS uuids,
       countIf(tag = 'S' AND match(JSONExtractString(av, 'S'),
           '^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]{{1,6}})?$')) AS numeric_strings,
       groupUniqArrayArray(multiIf(
           tag = 'L', arrayMap(e -> JSONExtractKeys(e)[1], JSONExtractArrayRaw(av, 'L')),
           tag = 'M', arrayMap(kv -> JSONExtractKeys(kv.2)[1], JSONExtractKeysAndValuesRaw(av, 'M')),
           [])) AS element_tags,
       (SELECT count() FROM sample) AS sampled
FROM kvs
GROUP BY attr, tag
ORDER BY attr, tag"""


def keys_sql(db: str, table: str) -> str:
    t = literal(table)
    return f"""
SELECT keys, count() FROM (
    SELECT JSONExtractKeys(line, if(JSONType(line, 'Keys') = 'Object', 'Keys', 'Key')) AS keys
    FROM {ident(db)}.export_lines WHERE table_name = {t} AND export_type = 'INCREMENTAL_EXPORT'
    UNION ALL
    SELECT JSONExtractKeys(data, 'dynamodb', 'Keys') FROM {ident(db)}.stream_records
    WHERE table_name = {t} OR JSONExtractString(data, 'tableName') = {t}
) WHERE notEmpty(keys) GROUP BY keys ORDER BY count() DESC LIMIT 5"""


def sample(client, db: str, table: str, limit: int) -> tuple[int, dict[str, AttributeStats], list[list[str]]]:
    rows = client.query(sample_sql(db, table, limit)).result_rows
    stats: dict[str, AttributeStats] = {}
    sampled = 0
    for attr, tag, n, numbers, distinct, uuids, numeric, element_tags, total in rows:
        s = stats.setdefault(attr, AttributeStats(attr))
        s.tags[tag] = n
        s.numbers.extend(numbers)
        if tag == "S":
            s.strings_distinct, s.strings_uuid, s.strings_numeric = distinct, uuids, numeric
        s.element_tags |= set(element_tags)
        sampled = total
    for s in stats.values():
        s.numbers = sorted(set(s.numbers))
    keys = [list(r[0]) for r in client.query(keys_sql(db, table)).result_rows]
    return sampled, stats, keys


def build(table: str, sampled: int, stats: dict[str, AttributeStats], seen_keys: list[list[str]],
          key: list[str] | None) -> tuple[str, list[Column], list[str]]:
    """(declaration name, columns, key column names)."""
    if sampled == 0 and seen_keys:
        raise ScaffoldError(f"the changes landed for {table} carry no item images, only their Keys "
                            f"({', '.join(seen_keys[0])}): a stream of view type KEYS_ONLY or OLD_IMAGE. Load a full "
                            "export to sample the items, or declare the columns by hand")
    if sampled == 0:
        raise ScaffoldError(f"no items of DynamoDB table {table} have landed in the raw tables yet: load an export "
                            f"or consume a stream first (dynamodb-cdc status shows what has landed)")
    if key is None:
        if not seen_keys:
            raise ScaffoldError(f"the key of {table} is not in the landed data (only full exports carry no Keys): "
                                f"pass --key PARTITION_KEY[,SORT_KEY]")
        key = seen_keys[0]
    elif seen_keys and set(key) != set(seen_keys[0]):
        # (a partition key alone on a table with a sort key would merge its items into one row each)
        raise ScaffoldError(f"--key {','.join(key)} is not the key of the changes landed for {table}, whose Keys "
                            f"hold {', '.join(seen_keys[0])}: give --key {','.join(seen_keys[0])} (partition key first)")
    for k in key:
        if k not in stats:
            raise ScaffoldError(f"key attribute {k!r} does not occur in the {sampled} sampled items of {table}")
    taken: set[str] = set()
    columns: list[Column] = []
    key_columns: list[str] = []
    for attr in key + sorted(a for a in stats if a not in key):
        ch_type, comment, binary = infer_column(stats[attr], sampled)
        if attr in key:
            tags = set(stats[attr].tags)
            if tags == {"B"}:
                ch_type = "String"
            elif ch_type.startswith(("LowCardinality", "Array", "Map")) or ch_type == "UUID":
                ch_type = "String"
            comment = "key; " + comment
        col = Column(column_name(attr, taken), attr, ch_type, comment, binary)
        columns.append(col)
        if attr in key:
            key_columns.append(col.name)
    return model_name(table), columns, key_columns


def _yaml_quoted(s: str) -> str:
    """A JSON string with every character outside printable ASCII escaped the way YAML reads it back: \\u for
    the BMP, \\U with 8 hex digits past it (YAML does not join a JSON surrogate pair: libyaml refuses it)."""
    return "".join(c if " " <= c <= "~" else f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"
                   for c in json.dumps(s, ensure_ascii=False))


def render_yaml(table: str, declaration: str, columns: list[Column], key_columns: list[str], sampled: int,
                key_guessed: bool) -> str:
    # JSON strings are valid YAML scalars; characters YAML reads otherwise (NEL as a line break, DEL refused,
    # a surrogate pair) are escapes, which YAML's double-quoted strings read back the same
    q = _yaml_quoted
    lines = [f"# dynamodb-cdc scaffold {table}: {sampled} sampled items. Paste under `vars: dynamodb_cdc_tables:`",
             "# in dbt_project.yml, then review each type against what the table may hold beyond the sample.",
             f"{q(declaration)}:"]
    if declaration != table:
        lines.append(f"  dynamodb_table: {q(table)}")
    note = "  # from the Keys of landed changes: check partition key first, then sort key" if key_guessed else ""
    lines.append(f"  key: [{', '.join(q(k) for k in key_columns)}]{note}")
    lines.append("  columns:")
    for c in columns:
        attribute = f", attribute: {q(c.attribute)}" if c.attribute != c.name else ""
        lines.append(f"    - {{name: {q(c.name)}{attribute}, type: {q(c.type)}}}  # {c.comment}")
    return "\n".join(lines) + "\n"


def write_models(declaration: str, output_dir: Path, force: bool) -> list[Path]:
    files = {
        output_dir / f"{declaration}_changes.sql": f"{{{{ dynamodb_cdc.changes_model('{declaration}') }}}}\n",
        output_dir / f"{declaration}_current.sql": f"{{{{ dynamodb_cdc.current_view(ref('{declaration}_changes')) }}}}\n",
    }
    existing = [p for p in files if p.exists()]
    if existing and not force:
        raise ScaffoldError(f"{existing[0]} exists; pass --force to overwrite it")
    output_dir.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text)
    return list(files)


def scaffold(client, db: str, table: str, *, limit: int, key: list[str] | None, output_dir: Path | None,
             force: bool) -> tuple[str, list[Path]]:
    sampled, stats, seen_keys = sample(client, db, table, limit)
    declaration, columns, key_columns = build(table, sampled, stats, seen_keys, key)
    text = render_yaml(table, declaration, columns, key_columns, sampled, key_guessed=key is None)
    written = write_models(declaration, output_dir, force) if output_dir is not None else []
    return text, written
