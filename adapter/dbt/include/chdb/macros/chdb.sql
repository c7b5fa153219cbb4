{#-
  No chdb__ macros: every macro and materialization comes from dbt-clickhouse.
  dbt dispatch looks for chdb__<name>, then clickhouse__<name>, then default__<name>;
  a chdb__ override placed in this directory would take precedence.
-#}
