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
  delete row at the snapshot's version (_source = 'full_export_absent').
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
  {%- set order_by = [] -%}
  {%- for k in spec.key -%}{%- do order_by.append(dynamodb_cdc.quote_identifier(k.name)) -%}{%- endfor -%}
  {{ config(
      materialized='incremental',
      incremental_strategy='append',
      engine='ReplacingMergeTree(_version, _is_deleted)',
      order_by=order_by,
  ) }}
  {%- set since = none -%}
  {%- set snapshots = true -%}
  {%- set existing = none -%}
  {%- if is_incremental() -%}
    {%- set since = "(SELECT max(_ingested_at) FROM " ~ this ~ ") - toIntervalSecond("
        ~ (var('dynamodb_cdc_lookback_seconds', 300) | int) ~ ")" -%}
    {%- set existing = this -%}
    {#- The snapshot pass reads the whole table: run it only when a snapshot can change something. -#}
    {%- set snapshots = execute and dynamodb_cdc._snapshots_matter(spec, since) -%}
  {%- endif -%}
SELECT * EXCEPT (_key_ok)
FROM (
{{ dynamodb_cdc._changes_select(spec, since=since, snapshots=snapshots, existing=existing) }}
)
WHERE _key_ok
{% endmacro %}


{#-
  True when some full export of the table can add delete rows in this run:
  one completed since `since`, or one newer than the oldest change read now
  (a late, older export of keys that a later snapshot no longer has).
-#}
{% macro _snapshots_matter(spec, since) %}
  {%- set sql -%}
SELECT count() FROM {{ source('dynamodb_cdc_raw', 'exports') }} FINAL
WHERE table_name = {{ dynamodb_cdc.string_literal(spec.name) }}
  AND export_type = 'FULL_EXPORT' AND status = 'loaded'
  AND (updated_at > {{ since }}
       OR export_time > ifNull((SELECT minOrNull(export_time) FROM {{ source('dynamodb_cdc_raw', 'export_lines') }}
                                WHERE table_name = {{ dynamodb_cdc.string_literal(spec.name) }}
                                  AND _ingested_at > {{ since }}), toDateTime64('2299-12-31 00:00:00', 3, 'UTC')))
  {%- endset -%}
  {{ return(run_query(sql).columns[0].values()[0] | int > 0) }}
{% endmacro %}


{#-
  SELECT of the change rows of a table, typed, with _key_ok = 0 for rows whose
  key cannot be converted to the declared key type (the changes model drops
  those; test no_conversion_errors reports them).
    since      SQL expression: read raw rows ingested after it (none: all)
    snapshots  add delete rows for keys that a completed full export does not
               contain although they existed before it: for snapshots completed
               after `since` with every known key, and for every snapshot with
               the keys read in this run
    existing   the changes relation already built (incremental runs), for known keys
-#}
{% macro _changes_select(spec, since=none, snapshots=false, existing=none) %}
  {%- set cols = spec.columns -%}
  {%- set keys = [] -%}
  {%- for k in spec.key -%}{%- do keys.append(dynamodb_cdc.quote_identifier(k.name)) -%}{%- endfor -%}
WITH raw AS (
    SELECT
        export_time,
        data_file_key,
        line_number,
        _ingested_at,
        JSONExtractRaw(line, 'Item') AS _item
    FROM {{ source('dynamodb_cdc_raw', 'export_lines') }}
    WHERE table_name = {{ dynamodb_cdc.string_literal(spec.name) }}
      AND export_type = 'FULL_EXPORT'
      {%- if since is not none %}
      AND _ingested_at > {{ since }}
      {%- endif %}
),
attributes AS (
    SELECT
        *,
        {%- for c in cols %}
        {{ dynamodb_cdc.attribute_path('_item', c.path) }} AS _av_{{ loop.index }}{{ ',' if not loop.last }}
        {%- endfor %}
    FROM raw
),
changes AS (
    SELECT
        {%- for c in cols %}
        {{ dynamodb_cdc._typed_column(c, '_av_' ~ loop.index) }} AS {{ dynamodb_cdc.quote_identifier(c.name) }},
        {%- endfor %}
        toUInt64(toUnixTimestamp64Micro(export_time)) AS _version,
        toUInt8(0) AS _is_deleted,
        CAST('full_export', 'LowCardinality(String)') AS _source,
        concat(data_file_key, '#', toString(line_number)) AS _source_ref,
        arrayFilter(x -> x != '', [
            {%- for c in cols %}
            if({{ dynamodb_cdc.conversion_failed('_av_' ~ loop.index, c.type, c.binary) }}, {{ dynamodb_cdc.string_literal(c.name) }}, ''){{ ',' if not loop.last }}
            {%- endfor %}
        ]) AS _conversion_errors,
        _ingested_at,
        {{ dynamodb_cdc._key_ok(spec, cols) }} AS _key_ok
    FROM attributes
)
{%- if snapshots %},
snapshots AS (
    SELECT * FROM (
        SELECT export_arn, toUInt64(toUnixTimestamp64Micro(export_time)) AS snapshot_version, updated_at,
               {{ 'toUInt8(1)' if since is none else 'toUInt8(updated_at > ' ~ since ~ ')' }} AS is_new
        FROM {{ source('dynamodb_cdc_raw', 'exports') }} FINAL
        WHERE table_name = {{ dynamodb_cdc.string_literal(spec.name) }}
          AND export_type = 'FULL_EXPORT' AND status = 'loaded'
    )
    WHERE is_new OR snapshot_version > ifNull((SELECT minOrNull(_version) FROM changes WHERE _key_ok), 18446744073709551615)
),
snapshot_keys AS (
    SELECT DISTINCT
        export_arn,
        {%- for k in spec.key %}
        {{ dynamodb_cdc._typed_column(k, dynamodb_cdc.attribute_path("JSONExtractRaw(line, 'Item')", k.path)) }} AS {{ keys[loop.index0] }}{{ ',' if not loop.last }}
        {%- endfor %}
    FROM {{ source('dynamodb_cdc_raw', 'export_lines') }}
    WHERE table_name = {{ dynamodb_cdc.string_literal(spec.name) }}
      AND export_arn IN (SELECT export_arn FROM snapshots)
),
known AS (
    SELECT {{ keys | join(', ') }}, min(_version) AS first_seen, max(is_new) AS is_new_key
    FROM (
        SELECT {{ keys | join(', ') }}, _version, toUInt8(1) AS is_new FROM changes WHERE _key_ok AND _is_deleted = 0
        {%- if existing is not none %}
        UNION ALL
        SELECT {{ keys | join(', ') }}, _version, toUInt8(0) AS is_new FROM {{ existing }} WHERE _is_deleted = 0
        {%- endif %}
    )
    GROUP BY {{ keys | join(', ') }}
),
absent AS (
    SELECT {% for k in keys %}known.{{ k }} AS {{ k }}, {% endfor %}s.snapshot_version, s.export_arn, s.updated_at
    FROM known CROSS JOIN snapshots AS s
    WHERE known.first_seen < s.snapshot_version
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
    CAST(NULL, {{ dynamodb_cdc.string_literal(c.column_type) }}) AS {{ dynamodb_cdc.quote_identifier(c.name) }},
    {%- endif %}
    {%- endfor %}
    snapshot_version AS _version,
    toUInt8(1) AS _is_deleted,
    CAST('full_export_absent', 'LowCardinality(String)') AS _source,
    export_arn AS _source_ref,
    CAST([], 'Array(String)') AS _conversion_errors,
    updated_at AS _ingested_at,
    toUInt8(1) AS _key_ok
FROM absent
{%- endif %}
{% endmacro %}


{#- A declared column, typed: keys are never NULL (rows whose key fails are dropped by _key_ok). -#}
{% macro _typed_column(c, av_expr) %}
  {%- set value = dynamodb_cdc.attribute_value(av_expr, c.type, c.binary) -%}
  {%- if c.is_key -%}
CAST(assumeNotNull({{ value }}), {{ dynamodb_cdc.string_literal(c.column_type) }})
  {%- else -%}
CAST({{ value }}, {{ dynamodb_cdc.string_literal(c.column_type) }})
  {%- endif -%}
{% endmacro %}


{#- 1 when every key attribute converts to its declared type. -#}
{% macro _key_ok(spec, cols) %}
  {%- for k in spec.key -%}
({{ dynamodb_cdc.attribute_value('_av_' ~ (cols.index(k) + 1), k.type, k.binary) }}) IS NOT NULL{{ ' AND ' if not loop.last }}
  {%- endfor -%}
{% endmacro %}
