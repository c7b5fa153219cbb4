{#-
  Fails (one row each) for every change whose change time is later than the
  time it was landed, plus a tolerance: a clock that runs ahead, a timestamp
  in the wrong unit, or a parsing error.  A real change always happens before
  its record reaches ClickHouse.  Also for every change stamped before
  DynamoDB existed (2012-01-18): seconds read as milliseconds, say, which
  would lose every comparison of versions to the item's other changes.

      models:
        - name: users_changes
          data_tests:
            - dynamodb_cdc.changes_not_after_ingestion:
                arguments: {tolerance_seconds: 300}
-#}
{% test changes_not_after_ingestion(model, tolerance_seconds=300) %}
  {{ return(adapter.dispatch('test_changes_not_after_ingestion', 'dynamodb_cdc')(model, tolerance_seconds)) }}
{% endtest %}

{% macro default__test_changes_not_after_ingestion(model, tolerance_seconds=300) %}
  {{ exceptions.raise_compiler_error("dynamodb_cdc.changes_not_after_ingestion needs ClickHouse (profile type clickhouse or chdb); this target is '" ~ target.type ~ "'.") }}
{% endmacro %}

{% macro clickhouse__test_changes_not_after_ingestion(model, tolerance_seconds=300) %}
{#- DISTINCT: a change read again through the look-back window is the same row until a merge collapses it -#}
SELECT DISTINCT
       if(_changed_at < toDateTime64('2012-01-18 00:00:00', 6, 'UTC'), 'change time before DynamoDB existed',
          'change time later than its ingestion time') AS problem,
       _source, _source_ref, _event, _changed_at, _ingested_at,
       dateDiff('second', _ingested_at, _changed_at) AS seconds_ahead
FROM {{ model }}
WHERE _changed_at > _ingested_at + toIntervalSecond({{ tolerance_seconds | int }})
   OR _changed_at < toDateTime64('2012-01-18 00:00:00', 6, 'UTC')
{% endmacro %}
