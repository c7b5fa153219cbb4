{#-
  The current state of a DynamoDB table: the latest version of every item,
  deleted items excluded.  Use it as the whole body of a model:

      {{ dynamodb_cdc.current_view(ref('users_changes')) }}
-#}
{% macro current_view(changes_relation) %}
  {{ return(adapter.dispatch('current_view', 'dynamodb_cdc')(changes_relation)) }}
{% endmacro %}

{% macro default__current_view(changes_relation) %}
  {{ exceptions.raise_compiler_error(
      "dynamodb_cdc.current_view reads a ReplacingMergeTree with FINAL and needs ClickHouse "
      ~ "(profile type clickhouse or chdb); this target is '" ~ target.type ~ "'.") }}
{% endmacro %}

{% macro clickhouse__current_view(changes_relation) %}
  {{ config(materialized='view') }}
SELECT * EXCEPT (_is_deleted)
FROM {{ dynamodb_cdc._final(changes_relation) }}
WHERE _is_deleted = 0
{% endmacro %}
