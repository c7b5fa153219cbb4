{#-
  Merges a changes model's parts so that reads with FINAL (the current view)
  cost about a plain scan again.  Schedule it after dbt run, off peak:

      dbt run-operation dynamodb_cdc.optimize_changes --args '{model: users_changes}'

    model   the changes model's name (a relation in `schema`)
    schema  its schema (database); default: the target's schema

  OPTIMIZE ... FINAL rewrites the whole table (11M rows on 2 cores: about
  20 s in make bench): the cost moves from every read to one scheduled job.  Delete
  rows (_is_deleted = 1) are kept, since a late older change must still lose to
  them; ClickHouse keeps merging in the background as well.
-#}
{% macro optimize_changes(model=none, schema=none) %}
  {%- if not model -%}
    {{ exceptions.raise_compiler_error("dynamodb_cdc.optimize_changes needs the changes model's name: "
        ~ "dbt run-operation dynamodb_cdc.optimize_changes --args '{model: users_changes}'") }}
  {%- endif -%}
  {%- set relation = adapter.get_relation(database=none, schema=schema or target.schema, identifier=model) -%}
  {%- if relation is none -%}
    {{ exceptions.raise_compiler_error("dynamodb_cdc.optimize_changes: no relation " ~ (schema or target.schema)
        ~ "." ~ model ~ " (run dbt first, or pass schema:)") }}
  {%- endif -%}
  {%- set parts_sql = "SELECT count() FROM system.parts WHERE active AND database = "
      ~ dynamodb_cdc.string_literal(relation.schema) ~ " AND table = " ~ dynamodb_cdc.string_literal(relation.identifier) -%}
  {%- set before = run_query(parts_sql).columns[0].values()[0] -%}
  {%- do run_query("OPTIMIZE TABLE " ~ relation ~ " FINAL") -%}
  {%- set after = run_query(parts_sql).columns[0].values()[0] -%}
  {{ log("dynamodb_cdc.optimize_changes: " ~ relation ~ ": " ~ before ~ " active parts before, " ~ after ~ " after", info=true) }}
{% endmacro %}
