{#-
  The changes model of one declared DynamoDB table: one row per change seen in
  the raw tables, typed, in a ReplacingMergeTree(_version, _is_deleted)
  ordered by the table's key.  Use it as the whole body of a model:

      {{ dynamodb_cdc.changes_model('users') }}

  Each run appends only the raw rows ingested since the newest row already in
  the model (less var dynamodb_cdc_lookback_seconds); rows read twice carry the
  same key and _version and collapse in the ReplacingMergeTree.

  A full export is a snapshot: once all its data files are loaded, every key
  known before its export time that the snapshot does not contain gets a
  delete row at the snapshot's version (_event = 'SNAPSHOT_ABSENT').
-#}
{% macro changes_model(table_name) %}
  {{ return(adapter.dispatch('changes_model', 'dynamodb_cdc')(table_name)) }}
{% endmacro %}

{% macro default__changes_model(table_name) %}
  {{ exceptions.raise_compiler_error(
      "dynamodb_cdc.changes_model builds ReplacingMergeTree tables and needs ClickHouse "
      ~ "(profile type clickhouse or chdb); this target is '" ~ target.type ~ "'.") }}
{% endmacro %}

{% macro clickhouse__changes_model(table_name) %}
  {%- set spec = dynamodb_cdc._table_spec(table_name) -%}
  {%- if execute -%}{%- do dynamodb_cdc._require_raw_tables(this) -%}{%- endif -%}
  {%- set order_by = [] -%}
  {%- for k in spec.key -%}{%- do order_by.append(dynamodb_cdc.quote_identifier(k.name)) -%}{%- endfor -%}
  {%- if spec.materialization == 'materialized_view' -%}
  {#- One ClickHouse materialized view per raw table, both writing into this model's
      table as rows are inserted (dbt-clickhouse's materialized_view, --name:begin/end
      markers); the first dbt run back-fills what is already there. -#}
  {#- The post-hook types again what landed since shortly before the run: dbt-clickhouse back-fills
      first and creates the views after (on --full-refresh it also drops the old views after the
      back-fill), so a row landed in between reached no view; read twice, a row collapses.  A run on
      existing views changes their query in place and skips it: the query names the table and views
      it found (_views_identity), and the hook compares them with those there after the run. -#}
  {{ config(
      materialized='materialized_view',
      engine='ReplacingMergeTree(_version, _is_deleted)',
      order_by=order_by,
      catchup=true,
      post_hook=["{{ dynamodb_cdc._views_caught_up_ddl(this) }}",
                 "{{ dynamodb_cdc._catch_up_views(this, " ~ (spec.declaration | tojson) ~ ") }}",
                 "{{ dynamodb_cdc._record_views_caught_up(this) }}"],
  ) }}
  {%- if execute and not should_full_refresh() and load_relation(this) is not none -%}
    {%- if not dynamodb_cdc._has_views(this) -%}
      {{ exceptions.raise_compiler_error(
          this ~ " was built by the incremental changes model, and dynamodb_cdc_tables." ~ spec.declaration
          ~ " now asks for materialized views: they would type only rows inserted from now on, and what landed "
          ~ "since the last run would be missing. Rebuild it from the raw tables (views and back-fill): "
          ~ "dbt run --full-refresh --select " ~ this.identifier) }}
    {%- endif -%}
    {%- do dynamodb_cdc._check_columns(spec, this) -%}
  {%- endif -%}
  {%- if execute -%}{%- do dynamodb_cdc._warn_full_exports_in_views(spec, this) -%}{%- endif -%}
  {%- if not execute %}
{{ dynamodb_cdc._parse_time_body() }}
  {%- else %}
{{ dynamodb_cdc._views_identity(this) if not should_full_refresh() else '' }}
--exports:begin
SELECT * EXCEPT (_key_ok, _failed_attributes)
FROM (
{{ dynamodb_cdc._changes_select(spec, sources=['exports']) }}
)
WHERE _key_ok
--exports:end
UNION ALL
--streams:begin
SELECT * EXCEPT (_key_ok, _failed_attributes)
FROM (
{{ dynamodb_cdc._changes_select(spec, sources=['streams']) }}
)
WHERE _key_ok
--streams:end
  {%- endif %}
  {%- else -%}
  {#- After each successful run, the full exports it has applied are recorded (the two hooks),
      so that later runs do not apply them again (see _unapplied). -#}
  {#- the DynamoDB table's name (spec.name: a declaration's dynamodb_table), as the exports ledger has it -#}
  {%- set table_arg = spec.name | tojson -%}
  {#- optimize_on_insert = 0: each insert is written as it comes, not first collapsed by key (FINAL and
      the merges collapse it anyway); about 10% of a full build.  A query_settings of your own wins. -#}
  {%- set query_settings = {'optimize_on_insert': 0} -%}
  {%- do query_settings.update(model.config.get('query_settings') or {}) -%}
  {{ config(
      materialized='incremental',
      incremental_strategy='append',
      engine='ReplacingMergeTree(_version, _is_deleted)',
      order_by=order_by,
      query_settings=query_settings,
      post_hook=["{{ dynamodb_cdc._applied_snapshots_ddl(this) }}",
                 "{{ dynamodb_cdc._record_applied_snapshots(this, " ~ table_arg ~ ") }}"],
  ) }}
  {%- set since = none -%}
  {%- set existing = none -%}
  {%- set unapplied = none -%}
  {%- if execute and load_relation(this) is not none and dynamodb_cdc._has_views(this) -%}
    {{ exceptions.raise_compiler_error(
        this ~ " was built with materialization: materialized_view, whose views " ~ this.identifier ~ "_exports and "
        ~ this.identifier ~ "_streams still write into it. To make it an incremental model, drop them first (DROP VIEW "
        ~ this.schema ~ "." ~ this.identifier ~ "_exports; DROP VIEW " ~ this.schema ~ "." ~ this.identifier ~ "_streams), "
        ~ "then dbt run --full-refresh --select " ~ this.identifier) }}
  {%- endif -%}
  {%- if is_incremental() -%}
    {%- if execute -%}{%- do dynamodb_cdc._check_columns(spec, this) -%}{%- endif -%}
    {%- set since = "(SELECT max(_ingested_at) FROM " ~ this ~ ") - toIntervalSecond("
        ~ (var('dynamodb_cdc_lookback_seconds', 300) | int) ~ ")" -%}
    {%- set existing = this -%}
    {%- set unapplied = execute and dynamodb_cdc._unapplied(this) or none -%}
  {%- endif -%}
  {#- The snapshot pass reads the whole table again: run it only when a snapshot can change something. -#}
  {%- if not execute %}
{{ dynamodb_cdc._parse_time_body(snapshots=true) }}
  {%- else %}
  {%- set snapshots = not dynamodb_cdc._reads_no_rows() and dynamodb_cdc._snapshots_matter(spec, since, unapplied) %}
SELECT * EXCEPT (_key_ok, _failed_attributes)
FROM (
{{ dynamodb_cdc._changes_select(spec, since=since, snapshots=snapshots, existing=existing, unapplied=unapplied) }}
)
WHERE _key_ok
  {%- endif %}
  {%- endif %}
{% endmacro %}


{#-
  What a changes model renders while dbt parses the project (execute is false): dbt then needs
  only the model's config (above) and the sources it reads, for the DAG, docs lineage and
  freshness.  The query itself, some 30 KB of SQL per table and about 0.2 s of Jinja, is
  rendered when the model is compiled or run; a project of many tables parses that much faster.
  The hooks of the incremental model name the exports ledger.
-#}
{#- The table of a changes model must have the declaration's columns, in its order and of its types:
    dbt-clickhouse inserts by position, so a column added, removed, moved or retyped in the declaration
    would put values in the wrong columns, or cut them to the old type.  Any such change needs the table
    rebuilt from the raw tables, which dbt's --full-refresh does: a clear error says so.  ClickHouse
    spells each declared type as the table has it (defaultValueOfTypeName), so `Decimal128(4)` and
    `Decimal(38, 4)` are the same type. -#}
{% macro _check_columns(spec, relation) %}
  {%- set re = modules.re -%}
  {%- set expected = [] -%}
  {%- for c in spec.columns -%}{%- do expected.append(c.name) -%}{%- endfor -%}
  {%- for name in dynamodb_cdc._model_columns() -%}{%- do expected.append(name) -%}{%- endfor -%}
  {%- set table = run_query("SELECT name, type FROM system.columns WHERE database = "
      ~ dynamodb_cdc.string_literal(relation.schema) ~ " AND table = " ~ dynamodb_cdc.string_literal(relation.identifier)
      ~ " ORDER BY position") -%}
  {%- set actual = [] -%}
  {%- set actual_types = {} -%}
  {%- for row in table.rows -%}{%- do actual.append(row[0]) -%}{%- do actual_types.update({row[0]: row[1]}) -%}{%- endfor -%}
  {%- set added = expected | reject('in', actual) | list -%}
  {%- set removed = actual | reject('in', expected) | list -%}
  {%- set problems = [] -%}
  {%- if added -%}{%- do problems.append("added: " ~ added | join(', ')) -%}{%- endif -%}
  {%- if removed -%}{%- do problems.append("removed: " ~ removed | join(', ')) -%}{%- endif -%}
  {%- if not problems and actual != expected -%}
    {%- do problems.append("in another order: " ~ expected[:spec.columns | length] | join(', ')
        ~ " (the table has " ~ actual[:spec.columns | length] | join(', ') ~ ")") -%}
  {%- endif -%}
  {%- if not problems -%}
    {%- set spelled = [] -%}
    {%- for c in spec.columns -%}
      {%- do spelled.append("toTypeName(defaultValueOfTypeName(" ~ dynamodb_cdc.string_literal(c.column_type) ~ ")) AS c" ~ loop.index0) -%}
    {%- endfor -%}
    {%- set declared = run_query("SELECT " ~ spelled | join(', ')).rows[0] -%}
    {%- for c in spec.columns -%}
      {%- set want = re.sub('\\s+', ' ', re.sub('\\(\\s+', '(', declared[loop.index0])) -%}
      {%- set have = re.sub('\\s+', ' ', re.sub('\\(\\s+', '(', actual_types[c.name])) -%}
      {%- if want != have -%}
        {%- do problems.append("retyped: " ~ c.name ~ " is " ~ have ~ " in the table, " ~ want ~ " now") -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
  {%- if problems -%}
    {{ exceptions.raise_compiler_error(
        relation ~ " was built with other columns than dynamodb_cdc_tables." ~ spec.declaration ~ " declares now ("
        ~ problems | join('; ') ~ "). Rebuild it from the raw tables: "
        ~ "dbt run --full-refresh --select " ~ relation.identifier) }}
  {%- endif -%}
{% endmacro %}


{#- The post-hook of a materialized-view changes model: the raw rows landed since the dbt invocation
    started (less dynamodb_cdc_lookback_seconds), typed and inserted again.  Rows landed between the
    back-fill and the views' creation reached neither; the rest are the same rows again (same key and
    _version), which collapse in the ReplacingMergeTree. -#}
{% macro _catch_up_views(model_relation, table_name) %}
  {%- if not execute -%}{{ return('') }}{%- endif -%}  {#- (dbt renders hooks while it parses too) -#}
  {#- The views and the table were there before this run and are the same ones now (dbt-clickhouse changed
      the views' query in place, ALTER ... MODIFY QUERY): every row landed meanwhile went through a view. -#}
  {#- ... and a run before this one caught up with them (_record_views_caught_up).  Unchanged views that
      no run caught up with (its catch-up failed or was stopped, or they were created by hand, or were
      there before this package recorded it) may have missed rows at any time before this run: every raw
      row is typed again, once. -#}
  {%- set kept = modules.re.search('^-- dynamodb_cdc views kept: \\S+$', sql or '', modules.re.MULTILINE) -%}
  {%- set identity = dynamodb_cdc._views_identity(model_relation) -%}
  {%- set unchanged = kept and kept.group(0) == identity -%}
  {%- if unchanged and dynamodb_cdc._views_caught_up(model_relation, identity) -%}
    {{ return('') }}
  {%- endif -%}
  {%- set spec = dynamodb_cdc._table_spec(table_name) -%}
  {%- set since = none if unchanged else dynamodb_cdc._server_run_started() ~ " - toIntervalSecond("
      ~ (var('dynamodb_cdc_lookback_seconds', 300) | int) ~ ")" -%}
INSERT INTO {{ model_relation }}
SELECT * EXCEPT (_key_ok, _failed_attributes)
FROM (
{{ dynamodb_cdc._changes_select(spec, since=since) }}
)
WHERE _key_ok
{% endmacro %}


{#- The table and views (_views_identity) each materialized-view changes model's post-hook has caught up
    with: every row landed before they were all in place is typed, and every row since went through them. -#}
{% macro _views_caught_up_relation(model_relation) %}
  {{ return(model_relation.incorporate(path={"identifier": "dynamodb_cdc_views_caught_up"}, type="table")) }}
{% endmacro %}

{% macro _views_caught_up_ddl(model_relation) %}
  {%- if not execute -%}{{ return('') }}{%- endif -%}
{{ dynamodb_cdc._model_ledger_ddl(dynamodb_cdc._views_caught_up_relation(model_relation), model_relation,
    ["views String COMMENT 'its table and views, by UUID (_views_identity)'"], 'views',
    'the views each materialized-view changes model has caught up with') }}
{% endmacro %}

{% macro _views_caught_up(model_relation, identity) %}
  {%- if not identity -%}{{ return(false) }}{%- endif -%}
  {{ return(run_query("SELECT count() FROM " ~ dynamodb_cdc._views_caught_up_relation(model_relation) ~ " WHERE model = "
                      ~ dynamodb_cdc._model_key(model_relation) ~ " AND views = " ~ dynamodb_cdc.string_literal(identity)
                     ).rows[0][0] | int > 0) }}
{% endmacro %}

{#- The post-hook after _catch_up_views (run only once it succeeded): the views it caught up with. -#}
{% macro _record_views_caught_up(model_relation) %}
  {%- if not execute -%}{{ return('') }}{%- endif -%}
  {%- set identity = dynamodb_cdc._views_identity(model_relation) -%}
  {%- if not identity or dynamodb_cdc._views_caught_up(model_relation, identity) -%}{{ return('') }}{%- endif -%}
INSERT INTO {{ dynamodb_cdc._views_caught_up_relation(model_relation) }} (model, views)
VALUES ({{ dynamodb_cdc._model_key(model_relation) }}, {{ dynamodb_cdc.string_literal(identity) }})
{% endmacro %}


{#- When this dbt invocation started, by the ClickHouse server's clock (SQL): the server's now less the
    time elapsed since run_started_at on dbt's own clock, so a dbt host whose clock is off the
    server's does not shift it (times it is compared with, _ingested_at and the exports ledger's
    updated_at, are the server's). -#}
{% macro _server_run_started() %}
  {%- set elapsed = modules.datetime.datetime.now(modules.pytz.utc) - run_started_at -%}
  {{ return("(now64(6, 'UTC') - toIntervalMicrosecond(" ~ ((elapsed.total_seconds() * 1000000) | int) ~ "))") }}
{% endmacro %}


{#- A materialized-view changes model's table and its two views as they are now, by ClickHouse's UUIDs:
    '-- dynamodb_cdc views kept: <uuid>,<uuid>,<uuid>', or '' unless all three exist with a UUID (a
    database engine without them, such as Ordinary, never matches).  A view dropped and created again,
    or a table swapped for a back-filled one, has another UUID. -#}
{% macro _views_identity(relation) %}
  {%- set names = [relation.identifier, relation.identifier ~ '_exports', relation.identifier ~ '_streams'] -%}
  {%- set literals = [] -%}
  {%- for n in names -%}{%- do literals.append(dynamodb_cdc.string_literal(n)) -%}{%- endfor -%}
  {%- set found = {} -%}
  {%- for row in run_query("SELECT name, toString(uuid) FROM system.tables WHERE database = "
        ~ dynamodb_cdc.string_literal(relation.schema) ~ " AND name IN (" ~ literals | join(', ') ~ ")").rows -%}
    {%- do found.update({row[0]: row[1]}) -%}
  {%- endfor -%}
  {%- set uuids = [] -%}
  {%- for n in names -%}
    {%- if found.get(n, '00000000-0000-0000-0000-000000000000') == '00000000-0000-0000-0000-000000000000' -%}
      {{ return('') }}
    {%- endif -%}
    {%- do uuids.append(found[n]) -%}
  {%- endfor -%}
  {{ return('-- dynamodb_cdc views kept: ' ~ uuids | join(',')) }}
{% endmacro %}


{#- Whether the materialized views of a changes model (materialization: materialized_view) exist. -#}
{% macro _has_views(relation) %}
  {%- for suffix in ['_exports', '_streams'] -%}
    {%- if adapter.get_relation(database=relation.database, schema=relation.schema,
                                identifier=relation.identifier ~ suffix) is not none -%}
      {{ return(true) }}
    {%- endif -%}
  {%- endfor -%}
  {{ return(false) }}
{% endmacro %}


{#- The columns a changes model adds after the declared ones, in order. -#}
{% macro _model_columns() %}
  {{ return(['_other_attributes', '_version', '_is_deleted', '_ttl_deleted', '_changed_at', '_event', '_source',
             '_source_ref', '_conversion_errors', '_ingested_at']) }}
{% endmacro %}


{#- The names the changes model's query uses for its own columns: a declared column cannot take one
    (nor _av_<n> / _tv_<n>). -#}
{% macro _reserved_names() %}
  {{ return(dynamodb_cdc._model_columns() + ['_keys', '_item', '_has_item', '_usable', '_key_ok', '_failed_attributes',
             '_time_n', '_time_us', '_changed_n', '_rank', '_seq', '_ttl', '_t_raw', '_precision', '_in_us']) }}
{% endmacro %}


{#- snapshots: the incremental model, whose snapshot pass also reads the exports ledger and quarantine -#}
{% macro _parse_time_body(snapshots=false) %}
-- parsing only: the query is rendered when dbt compiles or runs the model
SELECT 1 FROM {{ source('dynamodb_cdc_raw', 'export_lines') }}, {{ source('dynamodb_cdc_raw', 'stream_records') }}
{%- if snapshots %}, {{ source('dynamodb_cdc_raw', 'exports') }}, {{ source('dynamodb_cdc_raw', 'quarantine') }}{% endif %}
{%- endmacro %}


{#-
  Which full exports a changes model has applied.  A successful run records, in its post-hooks,
  every full export of its table that was loaded at least dynamodb_cdc_lookback_seconds before
  the dbt invocation started (so the run surely saw it loaded: the same margin the raw rows get)
  with the ledger's updated_at; a run applies each export it sees loaded (its snapshot pass, or
  none needed).  Nothing is recorded for a run that fails, and a lost record only means a pass
  that runs once more.  The table (dynamodb_cdc_applied_snapshots, next to the model) is created
  by the first run's hook.
-#}
{% macro _applied_snapshots_relation(model_relation) %}
  {{ return(model_relation.incorporate(path={"identifier": "dynamodb_cdc_applied_snapshots"}, type="table")) }}
{% endmacro %}

{% macro _model_key(model_relation) %}
  {{ return(dynamodb_cdc.string_literal(model_relation.schema ~ '.' ~ model_relation.identifier)) }}
{% endmacro %}

{% macro _applied_snapshots_ddl(model_relation) %}
{{ dynamodb_cdc._model_ledger_ddl(dynamodb_cdc._applied_snapshots_relation(model_relation), model_relation,
    ["table_name String COMMENT 'its DynamoDB table'", "export_arn String",
     "updated_at DateTime64(6, 'UTC') COMMENT 'the export ledger row (exports.updated_at) the model applied'"],
    'export_arn', 'the full exports each changes model has applied') }}
{% endmacro %}

{#- A table in a changes model's schema where its post-hooks record what it has done, per model. -#}
{% macro _model_ledger_ddl(relation, model_relation, columns, order_by, what) %}
CREATE TABLE IF NOT EXISTS {{ relation }} {{ on_cluster_clause(model_relation) }}(
    model String COMMENT 'the changes model (database.table)',
    {%- for c in columns %}
    {{ c }},
    {%- endfor %}
    recorded_at DateTime64(6, 'UTC') DEFAULT now64(6)
) ENGINE = MergeTree
ORDER BY (model, {{ order_by }})
COMMENT 'dynamodb_cdc: {{ what }} (written by its post-hooks)'
{% endmacro %}

{% macro _record_applied_snapshots(model_relation, table_name) %}
{%- if not dynamodb_cdc._reads_no_rows() %}
INSERT INTO {{ dynamodb_cdc._applied_snapshots_relation(model_relation) }} (model, table_name, export_arn, updated_at)
SELECT {{ dynamodb_cdc._model_key(model_relation) }}, table_name, export_arn, updated_at
{{ dynamodb_cdc._loaded_full_exports(table_name) }}
  AND updated_at <= {{ dynamodb_cdc._server_run_started() }} - toIntervalSecond({{ var('dynamodb_cdc_lookback_seconds', 300) | int }})
  AND {{ dynamodb_cdc._not_recorded(model_relation) }}
{%- endif %}
{% endmacro %}

{#- True under dbt's --empty: the raw sources then read as no rows while the exports ledger is read
    whole, so a snapshot pass would find none of a snapshot's keys and delete every item.  Such a run
    applies no snapshot and records none as applied: the next run does. -#}
{% macro _reads_no_rows() %}
  {%- set lines = source('dynamodb_cdc_raw', 'export_lines') -%}
  {{ return(lines.limit is defined and lines.limit is not none) }}
{% endmacro %}

{#- SQL condition on the exports ledger: this export, at this updated_at, is not recorded as
    applied to the model (the table must exist). -#}
{% macro _not_recorded(model_relation) %}
  {{ return("(export_arn, updated_at) NOT IN (SELECT export_arn, updated_at FROM "
            ~ dynamodb_cdc._applied_snapshots_relation(model_relation) ~ " WHERE model = "
            ~ dynamodb_cdc._model_key(model_relation) ~ ")") }}
{% endmacro %}

{#- SQL condition on the exports ledger: this export (at this updated_at) has not been applied to
    the model yet; none when nothing was ever recorded (every export counts as not applied). -#}
{% macro _unapplied(model_relation) %}
  {%- if load_relation(dynamodb_cdc._applied_snapshots_relation(model_relation)) is none -%}
    {{ return(none) }}
  {%- endif -%}
  {{ return(dynamodb_cdc._not_recorded(model_relation)) }}
{% endmacro %}


{#-
  True when some full export of the table can add delete rows in this run:
  one completed since `since` and not applied yet (`unapplied`, see
  _applied_snapshots_relation), or one newer than the oldest change read now
  (a late change, or a late older export, of a key that a later snapshot no
  longer has).  With `since` none (a first or full-refresh run), only the
  second: a table whose oldest change is its first full export (the usual
  start) skips the pass, since no key can be older than that snapshot.
-#}
{% macro _snapshots_matter(spec, since, unapplied=none) %}
  {#- The ledger first (cheap): no loaded full export, or one not applied yet, decides without
      reading any raw row; only otherwise are the run's changes parsed for their oldest version
      (none read: the largest UInt256; toUInt256(0) - 1 would be Int256 -1, which every
      snapshot passes). -#}
  {%- set ledger -%}
SELECT count(), {{ 'countIf(' ~ dynamodb_cdc._is_new_snapshot(since, unapplied) ~ ')' if since is not none else '0' }},
       toString(max({{ dynamodb_cdc._snapshot_version() }}))
{{ dynamodb_cdc._loaded_full_exports(spec.name) }}
  {%- endset -%}
  {%- set row = run_query(ledger).rows[0] -%}
  {%- if row[0] | int == 0 -%}
    {{ return(false) }}
  {%- elif row[1] | int > 0 -%}
    {{ return(true) }}
  {%- endif -%}
  {%- set oldest -%}
SELECT toUInt256({{ dynamodb_cdc.string_literal(row[2]) }})
       > ifNull((SELECT minOrNull({{ dynamodb_cdc._version_expr('_time_us', '_rank', '_seq') }})
                 FROM ({{ dynamodb_cdc._events(spec, since) }})), bitNot(toUInt256(0)))
  {%- endset -%}
  {{ return(run_query(oldest).columns[0].values()[0] | int > 0) }}
{% endmacro %}


{#-
  _version: one UInt256 that orders every change of an item the same way on
  every run, whatever the arrival order:
      time_us << 200  |  source rank << 196  |  sequence number
  time_us is the change time in microseconds, taken at the END of the source's
  precision (a Kinesis millisecond t counts as t*1000 + 999, a DynamoDB Streams
  second s as s*1000000 + 999999), so that a stream change never loses a tie to
  a snapshot taken in the same millisecond or second; the rank orders sources at
  equal times (full export 0 < incremental export 1 < streams 2); the sequence
  number orders the changes of one stream shard within the same time.
-#}
{% macro _version_expr(time_us, rank, seq) %}
  {{- return("(bitShiftLeft(toUInt256(" ~ time_us ~ "), 200) + bitShiftLeft(toUInt256(" ~ rank ~ "), 196) + (" ~ seq ~ "))") -}}
{% endmacro %}


{#-
  Every change event of a table read from the raw tables, not yet typed:
  _keys and _item (the key and the item as arrays of (attribute name,
  AttributeValue JSON text), each document parsed once), _is_deleted,
  _ttl_deleted, _time_us, _rank, _seq, _changed_at, _event, _source,
  _source_ref, _ingested_at and _usable (0 when the event cannot be applied:
  no usable time, no keys, or an INSERT/MODIFY without its new image).
-#}
{% macro _events(spec, since=none, sources=['exports', 'streams']) %}
  {%- set table = dynamodb_cdc.string_literal(spec.name) -%}
  {%- set keep_ttl = spec.ttl_deletes == 'keep' -%}
  {%- set wts = "'Metadata', 'WriteTimestampMicros'" -%}
  {#- the query of materialized views is what they run on every insert from then on: it reads the raw
      tables themselves even under dbt's --empty, whose empty subqueries would leave the views reading
      nothing (the rows landed meanwhile lost, as the next run does not back-fill) -#}
  {%- set whole = spec.materialization == 'materialized_view' -%}
  {%- set export_lines = source('dynamodb_cdc_raw', 'export_lines') -%}
  {%- set stream_records = source('dynamodb_cdc_raw', 'stream_records') -%}
SELECT
    _keys, _item, _is_deleted, _ttl_deleted, assumeNotNull(_time_n) AS _time_us, _rank, _seq,
    fromUnixTimestamp64Micro(toInt64(assumeNotNull(_changed_n)), 'UTC') AS _changed_at,
    _event, _source, _source_ref, _ingested_at,
    toUInt8(_time_n IS NOT NULL AND notEmpty(_keys) AND (_is_deleted OR _has_item)) AS _usable
FROM (
    {%- if 'exports' in sources %}
    SELECT
        {# (the columns in the streams branch's order: UNION ALL matches by position)
           a full export's keys are in its item, parsed once -#}
        if(export_type = 'FULL_EXPORT', _item,
           if(JSONHas(line, 'Keys'), JSONExtractKeysAndValuesRaw(line, 'Keys'), JSONExtractKeysAndValuesRaw(line, 'Key'))) AS _keys,
        if(export_type = 'FULL_EXPORT', JSONExtractKeysAndValuesRaw(line, 'Item'), JSONExtractKeysAndValuesRaw(line, 'NewImage')) AS _item,
        toUInt8(export_type = 'FULL_EXPORT' OR JSONHas(line, 'NewImage')) AS _has_item,
        toUInt8(NOT _has_item) AS _is_deleted,
        toUInt8(0) AS _ttl_deleted,
        if(export_type = 'FULL_EXPORT', toUInt64(toUnixTimestamp64Micro(export_time)),
           multiIf(JSONType(line, {{ wts }}) = 'Object', toUInt64OrNull(JSONExtractString(line, {{ wts }}, 'N')),
                   JSONType(line, {{ wts }}) = 'String', toUInt64OrNull(JSONExtractString(line, {{ wts }})),
                   JSONType(line, {{ wts }}) IN ('Int64', 'UInt64'), toNullable(JSONExtractUInt(line, {{ wts }})),
                   NULL)) AS _time_n,
        _time_n AS _changed_n,
        toUInt8(export_type != 'FULL_EXPORT') AS _rank,
        toUInt256(0) AS _seq,
        CAST(multiIf(export_type = 'FULL_EXPORT', 'SNAPSHOT', _is_deleted, 'REMOVE',
                     JSONHas(line, 'OldImage'), 'MODIFY', 'UPSERT'), 'LowCardinality(String)') AS _event,
        CAST(if(export_type = 'FULL_EXPORT', 'full_export', 'incremental_export'), 'LowCardinality(String)') AS _source,
        concat(data_file_key, '#', toString(line_number)) AS _source_ref,
        _ingested_at
    FROM {{ export_lines.render() if whole else export_lines }}
    WHERE table_name = {{ table }}
      {%- if since is not none %}
      AND _ingested_at > {{ since }}
      {%- endif %}
    {%- endif %}
    {%- if sources | length > 1 %}

    UNION ALL
    {%- endif %}
    {%- if 'streams' in sources %}

    SELECT _keys, _item, _has_item, _is_deleted, _ttl AS _ttl_deleted, _time_n, _changed_n, _rank, _seq,
           _event, _source, _source_ref, _ingested_at
    FROM (
        SELECT
            JSONExtractKeysAndValuesRaw(data, 'dynamodb', 'Keys') AS _keys,
            {#- Kinesis (and Lambda) spell the identity type / principalId, the DynamoDB Streams API Type / PrincipalId -#}
            toUInt8(JSONExtractString(data, 'eventName') = 'REMOVE'
                    AND (JSONExtractString(data, 'userIdentity', 'type') = 'Service'
                         OR JSONExtractString(data, 'userIdentity', 'Type') = 'Service')
                    AND (JSONExtractString(data, 'userIdentity', 'principalId') = 'dynamodb.amazonaws.com'
                         OR JSONExtractString(data, 'userIdentity', 'PrincipalId') = 'dynamodb.amazonaws.com')) AS _ttl,
            {%- if keep_ttl %}
            if(_ttl, JSONExtractKeysAndValuesRaw(data, 'dynamodb', 'OldImage'), JSONExtractKeysAndValuesRaw(data, 'dynamodb', 'NewImage')) AS _item,
            toUInt8(JSONHas(data, 'dynamodb', if(_ttl, 'OldImage', 'NewImage'))) AS _has_item,
            {#- a TTL removal without its old image (a KEYS_ONLY or NEW_IMAGE stream) has nothing to keep:
                it is applied as a delete, still flagged -#}
            toUInt8(JSONExtractString(data, 'eventName') = 'REMOVE' AND NOT (_ttl AND _has_item)) AS _is_deleted,
            {%- else %}
            JSONExtractKeysAndValuesRaw(data, 'dynamodb', 'NewImage') AS _item,
            toUInt8(JSONHas(data, 'dynamodb', 'NewImage')) AS _has_item,
            toUInt8(JSONExtractString(data, 'eventName') = 'REMOVE') AS _is_deleted,
            {%- endif %}
            JSONExtractRaw(data, 'dynamodb', 'ApproximateCreationDateTime') AS _t_raw,
            JSONExtractString(data, 'dynamodb', 'ApproximateCreationDateTimePrecision') AS _precision,
            {#- Kinesis: microseconds when the precision says so, else by digit count (13 = ms, 16 = us). -#}
            toUInt8(_precision = 'MICROSECOND' OR (_precision = '' AND length(_t_raw) >= 16)) AS _in_us,
            multiIf(source = 'dynamodb_streams', toUInt64OrNull(toString(floor(toFloat64OrNull(_t_raw)))) * 1000000,
                    _in_us, toUInt64OrNull(_t_raw),
                    toUInt64OrNull(_t_raw) * 1000) AS _changed_n,
            multiIf(source = 'dynamodb_streams', _changed_n + 999999, _in_us, _changed_n, _changed_n + 999) AS _time_n,
            toUInt8(2) AS _rank,
            toUInt256OrZero(sequence_number) AS _seq,
            CAST(JSONExtractString(data, 'eventName'), 'LowCardinality(String)') AS _event,
            CAST(source, 'LowCardinality(String)') AS _source,
            concat(shard_id, '#', sequence_number) AS _source_ref,
            _ingested_at
        FROM {{ stream_records.render() if whole else stream_records }}
        WHERE table_name = {{ table }}
          {%- if since is not none %}
          AND _ingested_at > {{ since }}
          {%- endif %}
    )
    {%- endif %}
)
{% endmacro %}


{#-
  SELECT of the change rows of a table, typed, with _key_ok = 0 for rows that
  cannot be applied (a key that does not convert to its declared type, or an
  unusable event): the changes model drops those; test no_conversion_errors
  reports them.
    since      SQL expression: read raw rows ingested after it (none: all)
    snapshots  add delete rows for keys that a completed full export does not
               contain although they existed before it: for snapshots completed
               after `since` (and not applied yet: `unapplied`) with every known
               key, and for every snapshot with the keys read in this run
    existing   the changes relation already built (incremental runs), for known keys
    unapplied  SQL condition on the exports ledger from _unapplied, or none
-#}
{#- FROM/WHERE of the exports ledger: the full exports of a table whose data files are all loaded. -#}
{% macro _loaded_full_exports(table_name) %}
  {#- (the ledger is metadata, read whole even under dbt's --empty) -#}
  {{ return("FROM " ~ source('dynamodb_cdc_raw', 'exports').render() ~ " FINAL\nWHERE table_name = "
            ~ dynamodb_cdc.string_literal(table_name) ~ " AND export_type = 'FULL_EXPORT' AND status = 'loaded'") }}
{% endmacro %}

{#- The loader's raw tables must be on this target: a profile pointed at another ClickHouse (or, on the
    embedded engine, at another directory, a relative path resolved from where dbt runs) would otherwise
    fail on an unknown table, or build nothing from an empty engine. -#}
{% macro _require_raw_tables(model_relation) %}
  {%- set raw = source('dynamodb_cdc_raw', 'export_lines') -%}
  {%- if load_relation(raw) is none -%}
    {%- set where = target.get('path') or (target.get('host', '') ~ ':' ~ target.get('port', '')) -%}
    {{ exceptions.raise_compiler_error(
        model_relation ~ ": the loader's raw tables are not on this target: " ~ raw.schema ~ ".export_lines does not "
        ~ "exist (target " ~ target.name ~ ", type " ~ target.type ~ ", " ~ where ~ "). Point the profile at the "
        ~ "ClickHouse the loader writes to (on the embedded engine, the loader's directory: a relative path is "
        ~ "resolved from the directory dbt runs in), set var dynamodb_cdc_raw_database to the loader's "
        ~ "--raw-database, or create the raw tables there with any dynamodb-cdc command (load-export, or "
        ~ "status on an existing directory)."
        ~ (" To build the docs without them: dbt docs generate --no-compile (the lineage comes from the project; "
           ~ "only the compiled SQL is left out)." if flags.WHICH == 'generate' else "")) }}
  {%- endif -%}
{% endmacro %}


{#- A materialized_view changes model infers no deletes from a full export: warn, on each run, when more
    than one has landed for its table (the deletes of every one after the first are not applied). -#}
{% macro _warn_full_exports_in_views(spec, model_relation) %}
  {%- if load_relation(source('dynamodb_cdc_raw', 'exports')) is none -%}{{ return(none) }}{%- endif -%}
  {%- set row = run_query("SELECT count(), toString(max(export_time)) "
                          ~ dynamodb_cdc._loaded_full_exports(spec.name)).rows[0] -%}
  {%- if row[0] | int > 1 -%}
    {%- do exceptions.warn(model_relation ~ " (materialization: materialized_view): " ~ row[0] ~ " full exports of "
        ~ "DynamoDB table " ~ spec.name ~ " have landed, the newest as of " ~ row[1] ~ " UTC. Materialized views infer "
        ~ "no deletes from a full export: items missing from a later one stay current. For a table kept current by "
        ~ "full exports, declare materialization: incremental, then dbt run --full-refresh --select "
        ~ model_relation.identifier) -%}
  {%- endif -%}
{% endmacro %}


{#- A full export's _version (its rows' and its delete rows'): the export time, rank 0, sequence 0. -#}
{% macro _snapshot_version() %}
  {{ return(dynamodb_cdc._version_expr("toUInt64(toUnixTimestamp64Micro(export_time))", "0", "toUInt256(0)")) }}
{% endmacro %}


{#- A full export completed after `since` that the model has not applied yet (SQL on the exports ledger). -#}
{% macro _is_new_snapshot(since, unapplied) %}
  {{ return('(updated_at > ' ~ since ~ (' AND ' ~ unapplied if unapplied else '') ~ ')') }}
{% endmacro %}


{% macro _changes_select(spec, since=none, snapshots=false, existing=none, sources=['exports', 'streams'], unapplied=none) %}
  {%- set cols = spec.columns -%}
  {#- each column's conversion, computed once as _tv_<n> (typed) and read by its column, its
      conversion check and the key check: written out in each place instead, ClickHouse
      analyses the same expressions three times over, in every run and in every insert a
      materialized-view model sees -#}
  {%- set parts = [] -%}
  {%- for c in cols -%}
    {%- do parts.append(dynamodb_cdc._typed_parts('_av_' ~ loop.index, c.type, c.binary, '_tv_' ~ loop.index)) -%}
  {%- endfor -%}
  {%- set keys = [] -%}
  {%- for k in spec.key -%}{%- do keys.append(dynamodb_cdc.quote_identifier(k.name)) -%}{%- endfor -%}
WITH events AS (
{{ dynamodb_cdc._events(spec, since, sources) }}
),
attributes AS (
    SELECT
        *,
        {%- for c in cols %}
        {{ dynamodb_cdc._kv_path('_keys' if c.is_key else '_item', c.path) }} AS _av_{{ loop.index }}{{ ',' if not loop.last }}
        {%- endfor %}
    FROM events
),
typed AS (
    SELECT
        *,
        {%- for c in cols %}
        {{ parts[loop.index0].expr }} AS _tv_{{ loop.index }}{{ ',' if not loop.last }}
        {%- endfor %}
    FROM attributes
),
changes AS (
    SELECT
        {%- for c in cols %}
        {{ dynamodb_cdc._column_of(c, parts[loop.index0].value) }} AS {{ dynamodb_cdc.quote_identifier(c.name) }},
        {%- endfor %}
        {{ dynamodb_cdc._other_attributes('_item', cols) }} AS _other_attributes,
        {{ dynamodb_cdc._version_expr('_time_us', '_rank', '_seq') }} AS _version,
        _is_deleted,
        _ttl_deleted,
        _changed_at,
        _event,
        _source,
        _source_ref,
        arrayFilter(x -> x != '', [
            {%- for c in cols %}
            if({{ parts[loop.index0].failed }}, {{ dynamodb_cdc.string_literal(c.name) }}, ''){{ ',' if not loop.last }}
            {%- endfor %}
        ]) AS _conversion_errors,
        {#- the top-level attributes whose column could not take them (they stay in _other_attributes) -#}
        arrayFilter(x -> x != '', [
            {%- for c in cols if c.path | length == 1 %}
            if({{ parts[cols.index(c)].failed }}, {{ dynamodb_cdc.string_literal(c.path[0]) }}, ''){{ ',' if not loop.last }}
            {%- endfor %}
        ]) AS _failed_attributes,
        _ingested_at,
        toUInt8(_usable AND {{ dynamodb_cdc._key_ok(spec, cols, parts) }}) AS _key_ok
    FROM typed
)
{%- if snapshots %},
snapshots AS (
    SELECT * FROM (
        SELECT export_arn,
               {{ dynamodb_cdc._snapshot_version() }} AS snapshot_version,
               updated_at,
               {{ 'toUInt8(1)' if since is none else 'toUInt8(' ~ dynamodb_cdc._is_new_snapshot(since, unapplied) ~ ')' }} AS is_new
        {{ dynamodb_cdc._loaded_full_exports(spec.name) }}
    )
    WHERE (is_new OR snapshot_version > ifNull((SELECT minOrNull(_version) FROM changes WHERE _key_ok), bitNot(toUInt256(0))))
      {#- a snapshot with a quarantined line is not a whole key set: that line's item cannot be told
          apart from a deleted one, so the snapshot deletes nothing (quarantine_is_empty reports the line) #}
      AND export_arn NOT IN (SELECT origin FROM {{ source('dynamodb_cdc_raw', 'quarantine') }}
                             WHERE source = 'export' AND table_name = {{ dynamodb_cdc.string_literal(spec.name) }})
),
snapshot_keys AS (
    SELECT DISTINCT
        export_arn,
        {%- for k in spec.key %}
        {{ dynamodb_cdc._column_of(k, '_tv_' ~ loop.index) }} AS {{ keys[loop.index0] }}{{ ',' if not loop.last }}
        {%- endfor %}
    FROM (
        SELECT
            export_arn,
            {%- for k in spec.key %}
            {{ dynamodb_cdc.attribute_value(dynamodb_cdc._kv_path("JSONExtractKeysAndValuesRaw(line, 'Item')", k.path), k.type, k.binary) }} AS _tv_{{ loop.index }}{{ ',' if not loop.last }}
            {%- endfor %}
        FROM {{ source('dynamodb_cdc_raw', 'export_lines') }}
        WHERE table_name = {{ dynamodb_cdc.string_literal(spec.name) }}
          AND export_arn IN (SELECT export_arn FROM snapshots)
    )
    {#- an item whose key does not convert is left out of the changes (no_conversion_errors reports it):
        taken here as the type's default, it would keep the item whose key that is from being deleted.
        (_tv_<n>: a name no declared column can take, so the keys named after them above cannot stand in for them) -#}
    WHERE {% for k in spec.key %}_tv_{{ loop.index }} IS NOT NULL{{ ' AND ' if not loop.last }}{% endfor %}
),
known AS (
    {#- kept_expired: the key's latest live row is a TTL delete kept as history (ttl_deletes: keep),
        which a later snapshot does not hold either: it stays, not deleted by that snapshot -#}
    SELECT {{ keys | join(', ') }}, min(_version) AS first_seen, max(is_new) AS is_new_key,
           argMax(_ttl_deleted, _version) AS kept_expired
    FROM (
        SELECT {{ keys | join(', ') }}, _version, _ttl_deleted, toUInt8(1) AS is_new FROM changes WHERE _key_ok AND _is_deleted = 0
        {%- if existing is not none %}
        UNION ALL
        SELECT {{ keys | join(', ') }}, _version, _ttl_deleted, toUInt8(0) AS is_new FROM {{ existing }} WHERE _is_deleted = 0
        {%- endif %}
    )
    GROUP BY {{ keys | join(', ') }}
),
absent AS (
    SELECT {% for k in keys %}known.{{ k }} AS {{ k }}, {% endfor %}s.snapshot_version, s.export_arn, s.updated_at
    FROM known CROSS JOIN snapshots AS s
    WHERE known.first_seen < s.snapshot_version
      AND NOT known.kept_expired
      AND (s.is_new OR known.is_new_key)
      AND (s.export_arn, {% for k in keys %}known.{{ k }}{{ ', ' if not loop.last }}{% endfor %})
          NOT IN (SELECT export_arn, {{ keys | join(', ') }} FROM snapshot_keys)
)
{%- endif %}
SELECT * FROM changes
{%- if snapshots %}
UNION ALL
SELECT
    {%- for c in cols %}
    {%- if c.is_key %}
    {{ dynamodb_cdc.quote_identifier(c.name) }},
    {%- else %}
    defaultValueOfTypeName({{ dynamodb_cdc.string_literal(c.column_type) }}) AS {{ dynamodb_cdc.quote_identifier(c.name) }},  {#- NULL, or empty for Array / Map #}
    {%- endif %}
    {%- endfor %}
    '{}' AS _other_attributes,
    snapshot_version AS _version,
    toUInt8(1) AS _is_deleted,
    toUInt8(0) AS _ttl_deleted,
    fromUnixTimestamp64Micro(toInt64(bitShiftRight(snapshot_version, 200)), 'UTC') AS _changed_at,
    CAST('SNAPSHOT_ABSENT', 'LowCardinality(String)') AS _event,
    CAST('full_export', 'LowCardinality(String)') AS _source,
    export_arn AS _source_ref,
    CAST([], 'Array(String)') AS _conversion_errors,
    CAST([], 'Array(String)') AS _failed_attributes,
    {#- raw rows' _ingested_at is the server's clock, and the next run reads from the newest one: a ledger
        row a loader wrote by its own clock (before it took the server's), ahead of the server's, must not
        move that on -#}
    least(updated_at, now64(6, 'UTC')) AS _ingested_at,
    toUInt8(1) AS _key_ok
FROM absent
{%- endif %}
{% endmacro %}


{#-
  The item's attributes that no column takes whole, as DynamoDB JSON text
  ('{"attr": {"S": "..."}, ...}'), so nothing is lost when the table grows an
  attribute.  An attribute read only through a nested path stays here whole,
  and so does an attribute whose value its column's type could not take (the
  column is NULL and names it in _conversion_errors): after type drift the
  value is still in the model, never lost.
-#}
{% macro _other_attributes(item_expr, cols) %}
  {%- set taken = [] -%}
  {%- for c in cols if c.path | length == 1 -%}
    {%- do taken.append(dynamodb_cdc.string_literal(c.path[0])) -%}
  {%- endfor -%}
concat('{', arrayStringConcat(arrayMap(kv -> concat(toJSONString(kv.1), ':', kv.2),
    arrayFilter(kv -> kv.1 NOT IN ({{ taken | join(', ') if taken else "''" }}) OR has(_failed_attributes, kv.1), {{ item_expr }})), ','), '}')
{%- endmacro %}


{#-
  The AttributeValue (JSON text) at `path` in an item given as an array of
  (attribute name, AttributeValue JSON text), as _events gives it; '' when
  missing.  The top-level attribute is looked up in the array (the item was
  parsed once); deeper levels are read as attribute_path reads them.
-#}
{% macro _kv_path(kv_expr, path) %}
  {%- set names = dynamodb_cdc._attribute_names(path) -%}
  {%- set top = kv_expr ~ ".2[indexOf(" ~ kv_expr ~ ".1, " ~ dynamodb_cdc.string_literal(names[0]) ~ ")]" -%}
  {%- if names | length == 1 -%}
    {{ return(top) }}
  {%- endif -%}
  {#- the keys attribute_path uses below the top-level name -#}
  {{ return('JSONExtractRaw(' ~ top ~ ', ' ~ dynamodb_cdc._path_keys(names)[1:] | join(', ') ~ ')') }}
{% endmacro %}


{#- A declared column from its converted `value`: keys are never NULL (rows whose key fails are dropped by _key_ok). -#}
{% macro _column_of(c, value) %}
  {%- if c.is_key -%}
CAST(assumeNotNull({{ value }}), {{ dynamodb_cdc.string_literal(c.column_type) }})
  {%- else -%}
CAST({{ value }}, {{ dynamodb_cdc.string_literal(c.column_type) }})
  {%- endif -%}
{% endmacro %}


{#- 1 when every key attribute converts to its declared type. -#}
{% macro _key_ok(spec, cols, parts) %}
  {%- for k in spec.key -%}
{{ parts[cols.index(k)].value }} IS NOT NULL{{ ' AND ' if not loop.last }}
  {%- endfor -%}
{% endmacro %}
