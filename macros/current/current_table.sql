{#-
  The current state of a DynamoDB table as a plain table, rebuilt on each
  dbt run: the same rows as current_view, read without FINAL.  Use it as the
  whole body of a model, for read-heavy use where reads must not pay for
  FINAL on unmerged parts:

      {{ dynamodb_cdc.current_table(ref('users_changes'), 'users') }}

  `table_name` is the declared DynamoDB table: the table is ordered by its key,
  like the changes model.  It is as fresh as the last dbt run (not fresher, even with the
  materialized_view changes model), and each run rewrites it whole.
-#}
{% macro current_table(changes_relation, table_name) %}
  {{ return(adapter.dispatch('current_table', 'dynamodb_cdc')(changes_relation, table_name)) }}
{% endmacro %}

{% macro default__current_table(changes_relation, table_name) %}
  {{ exceptions.raise_compiler_error(
      "dynamodb_cdc.current_table reads a ReplacingMergeTree with FINAL and needs ClickHouse "
      ~ "(profile type clickhouse or chdb); this target is '" ~ target.type ~ "'.") }}
{% endmacro %}

{% macro clickhouse__current_table(changes_relation, table_name) %}
  {#- The ORDER BY must be known when dbt parses the model, before any ref resolves: the declared key. -#}
  {%- set order_by = [] -%}
  {%- for k in dynamodb_cdc._table_spec(table_name).key -%}{%- do order_by.append(dynamodb_cdc.quote_identifier(k.name)) -%}{%- endfor %}
  {{ config(materialized='table', engine='MergeTree', order_by=order_by) }}
SELECT * EXCEPT (_is_deleted)
FROM {{ dynamodb_cdc._final(changes_relation) }}
WHERE _is_deleted = 0
{% endmacro %}
