{#-
  Fails for every row that differs between a model and the rows of `expected`
  for the current stage (both directions), comparing the seed's columns as
  text so the types of the two sides cannot hide a difference.
  The model's column `weird \`name x` is compared with the seed's weird_name.
-#}
{% test equals_expected(model, expected, stage) %}
  {%- set columns = ['tenant', 'customer_id', 'name', 'balance', 'visits', 'score', 'vip', 'city', 'street', 'avatar_b64'] -%}
  {%- set model_cols = [] -%}
  {%- set seed_cols = [] -%}
  {%- for c in columns -%}
    {%- do model_cols.append("ifNull(toString(`" ~ c ~ "`), '<null>') AS " ~ c) -%}
    {%- do seed_cols.append("ifNull(toString(`" ~ c ~ "`), '<null>') AS " ~ c) -%}
  {%- endfor -%}
  {%- do model_cols.append("ifNull(toString(`weird \\`name x`), '<null>') AS weird_name") -%}
  {%- do seed_cols.append("ifNull(toString(weird_name), '<null>') AS weird_name") -%}
WITH actual AS (SELECT {{ model_cols | join(', ') }} FROM {{ model }}),
     wanted AS (SELECT {{ seed_cols | join(', ') }} FROM {{ expected }} WHERE stage = {{ stage }})
SELECT 'missing from the model' AS problem, * FROM (SELECT * FROM wanted EXCEPT SELECT * FROM actual)
UNION ALL
SELECT 'unexpected in the model' AS problem, * FROM (SELECT * FROM actual EXCEPT SELECT * FROM wanted)
{% endtest %}
