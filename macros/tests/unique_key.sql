{#-
  Fails for every key value that appears more than once: for a current-state
  view, the DynamoDB table key must be unique.

      data_tests:
        - dynamodb_cdc.unique_key:
            arguments: {columns: [customer_id, order_id]}
-#}
{% test unique_key(model, columns) %}
  {%- set quoted = [] -%}
  {%- for c in columns -%}{%- do quoted.append(dynamodb_cdc.quote_identifier(c)) -%}{%- endfor -%}
SELECT {{ quoted | join(', ') }}, count() AS occurrences
FROM {{ model }}
GROUP BY {{ quoted | join(', ') }}
HAVING count() > 1
{% endtest %}
