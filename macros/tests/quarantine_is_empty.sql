{#-
  Fails for every input the loader set aside in the quarantine table (optionally
  for one DynamoDB table).  The package applies it to the quarantine source with
  severity warn; raise it to error where bad input must stop the pipeline.
-#}
{% test quarantine_is_empty(model, table_name=none) %}
SELECT source, table_name, origin, location, line_number, sequence_number, error
FROM {{ model }}
{%- if table_name is not none %}
WHERE table_name = {{ dynamodb_cdc.string_literal(table_name) }}
{%- endif %}
{% endtest %}
