{#-
  Fails (one row each) for every value of an item's latest change that the
  changes model could not convert to its declared type (a number that
  overflows or would lose digits, a type tag that does not map to the column
  type), and for raw rows whose key could not be converted (the changes model
  leaves those out).  Rows read again through the look-back window, and changes
  a later change supersedes, are not counted.

      models:
        - name: users_changes
          data_tests:
            - dynamodb_cdc.no_conversion_errors:
                arguments: {table_name: users}
-#}
{% test no_conversion_errors(model, table_name) %}
  {{ return(adapter.dispatch('test_no_conversion_errors', 'dynamodb_cdc')(model, table_name)) }}
{% endtest %}

{% macro default__test_no_conversion_errors(model, table_name) %}
  {{ exceptions.raise_compiler_error("dynamodb_cdc.no_conversion_errors needs ClickHouse (profile type clickhouse or chdb); this target is '" ~ target.type ~ "'.") }}
{% endmacro %}

{% macro clickhouse__test_no_conversion_errors(model, table_name) %}
  {%- if not execute -%}
    {#- At parse time, record the dependency only: the declaration is read when the test runs,
        so a test on a disabled example model does not need its table declared. -#}
SELECT 1 FROM {{ source('dynamodb_cdc_raw', 'export_lines') }}
  {%- else -%}
  {%- set spec = dynamodb_cdc._table_spec(table_name) -%}
  {%- set key_names = [] -%}
  {%- for k in spec.key -%}{%- do key_names.append(k.name) -%}{%- endfor -%}
SELECT 'value not convertible to its declared type' AS problem,
       _source_ref AS source_ref,
       arrayStringConcat(_conversion_errors, ', ') AS columns
FROM {{ dynamodb_cdc._final(model) }} {# each item's latest change: a row read again (look-back) or superseded is not counted #}
WHERE notEmpty(_conversion_errors)
UNION ALL
SELECT 'change left out of the changes model: key not convertible, no usable change time, or no new image' AS problem,
       _source_ref AS source_ref,
       {{ dynamodb_cdc.string_literal(key_names | join(', ')) }} AS columns
FROM (
{{ dynamodb_cdc._changes_select(spec) }}
)
WHERE NOT _key_ok
  {%- endif %}
{% endmacro %}
