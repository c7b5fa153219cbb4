{#-
  Reads and checks one table declaration from var('dynamodb_cdc_tables').
  Returns a dict:
    name        DynamoDB table name
    key         list of key column dicts (partition key, then sort key)
    columns     list of all column dicts in declared order (keys included)
  Each column dict: name, path (list of attribute names), type (as declared),
  column_type (the type of the changes-model column: keys as declared, other
  columns Nullable), binary ('base64' or 'bytes'), is_key.
-#}
{% macro _table_spec(table_name) %}
  {%- set tables = var('dynamodb_cdc_tables', {}) -%}
  {%- if table_name not in tables -%}
    {{ exceptions.raise_compiler_error(
        "DynamoDB table '" ~ table_name ~ "' is not declared. Add it under vars: dynamodb_cdc_tables: in dbt_project.yml "
        ~ "(key: [...], columns: [{name: ..., type: ...}]). Declared tables: " ~ (tables.keys() | list | join(', ') or 'none')) }}
  {%- endif -%}
  {%- set decl = tables[table_name] -%}
  {%- set where = "dynamodb_cdc_tables." ~ table_name -%}
  {%- if decl is not mapping or 'columns' not in decl or 'key' not in decl -%}
    {{ exceptions.raise_compiler_error(where ~ " needs 'key' (list of key attribute names) and 'columns' (list of {name, type})") }}
  {%- endif -%}
  {%- set unknown = decl.keys() | reject('in', ['key', 'columns', 'dynamodb_table', 'ttl_deletes', 'materialization']) | list -%}
  {%- if unknown -%}
    {{ exceptions.raise_compiler_error(where ~ " has unknown key(s) " ~ unknown | join(', ')
        ~ "; a table declares key, columns, dynamodb_table, ttl_deletes and materialization") }}
  {%- endif -%}
  {%- set key_names = [decl['key']] if decl['key'] is string else decl['key'] -%}
  {%- if key_names | length < 1 or key_names | length > 2 -%}
    {{ exceptions.raise_compiler_error(where ~ ".key must name the partition key and optionally the sort key") }}
  {%- endif -%}
  {%- set columns = [] -%}
  {%- set seen = [] -%}
  {%- for c in decl['columns'] -%}
    {%- if c is not mapping or not c.get('name') or not c.get('type') -%}
      {{ exceptions.raise_compiler_error(where ~ ".columns[" ~ loop.index0 ~ "] needs a name and a type, got " ~ c) }}
    {%- endif -%}
    {%- set unknown = c.keys() | reject('in', ['name', 'type', 'attribute', 'path', 'binary']) | list -%}
    {%- if unknown -%}
      {{ exceptions.raise_compiler_error(where ~ ": column '" ~ c['name'] ~ "' has unknown key(s) " ~ unknown | join(', ')
          ~ "; a column declares name, type, attribute or path, and binary") }}
    {%- endif -%}
    {%- if 'attribute' in c and 'path' in c -%}
      {{ exceptions.raise_compiler_error(where ~ ": column '" ~ c['name'] ~ "' has both attribute and path; "
          ~ "give attribute (a top-level attribute) or path (a list, into maps and lists)") }}
    {%- endif -%}
    {%- if c['name'] in dynamodb_cdc._reserved_names() or modules.re.match('_[at]v_[0-9]+$', c['name']) -%}
      {{ exceptions.raise_compiler_error(where ~ ": column name " ~ c['name'] ~ " is one the changes model uses for "
          ~ "its own columns. Name the column differently and keep the DynamoDB name in `attribute:` "
          ~ "(e.g. {name: " ~ c['name'].lstrip('_') ~ "_attr, attribute: " ~ c['name'] ~ ", type: ...})") }}
    {%- endif -%}
    {%- if c['name'] in seen -%}
      {{ exceptions.raise_compiler_error(where ~ ": column '" ~ c['name'] ~ "' is declared twice") }}
    {%- endif -%}
    {%- if '"' in c['name'] or '\\' in c['name'] -%}
      {{ exceptions.raise_compiler_error(where ~ ": column name " ~ c['name'] ~ " contains a double quote or a backslash, "
          ~ "which dbt-clickhouse cannot quote in its INSERT column lists. Name the column differently and keep the "
          ~ "DynamoDB name in `attribute:` (attribute names may contain any character).") }}
    {%- endif -%}
    {%- do seen.append(c['name']) -%}
    {%- set path = c.get('path', c.get('attribute', c['name'])) -%}
    {%- set path = [path] if path is string else path -%}
    {%- set is_key = c['name'] in key_names -%}
    {%- set binary = c.get('binary', 'base64') -%}
    {%- if binary not in ['base64', 'bytes'] -%}
      {{ exceptions.raise_compiler_error(where ~ ": column '" ~ c['name'] ~ "' has binary: " ~ binary ~ "; use base64 or bytes") }}
    {%- endif -%}
    {#- every declared type is checked here, while dbt parses: ClickHouse's own error for a misspelt type
        (in the column check of a built model) names neither the column nor the declaration -#}
    {%- set info = dynamodb_cdc._type_info(c['type'], where ~ ", column '" ~ c['name'] ~ "'") -%}
    {%- if is_key and info.kind in ['float', 'array', 'map'] -%}
      {{ exceptions.raise_compiler_error(where ~ ": key column '" ~ c['name'] ~ "' is declared " ~ c['type'] ~ ". "
          ~ ("Distinct DynamoDB numbers that round to the same float would be one item, and one of them would hide the other: "
             ~ "declare an N key as an integer type or Decimal(P, S) wide enough for its values"
             if info.kind == 'float' else "A DynamoDB key is an S, N or B value: declare it String, an integer type or Decimal")) }}
    {%- endif -%}
    {%- do columns.append({
        'name': c['name'], 'path': path, 'type': c['type'], 'binary': binary, 'is_key': is_key,
        'column_type': dynamodb_cdc._key_type(c['type']) if is_key else dynamodb_cdc._nullable_type(c['type'])}) -%}
  {%- endfor -%}
  {%- for k in key_names -%}
    {%- if k not in seen -%}
      {{ exceptions.raise_compiler_error(where ~ ".key names '" ~ k ~ "', which is not among its columns; declare it with its type") }}
    {%- endif -%}
  {%- endfor -%}
  {%- set key = [] -%}
  {%- for k in key_names -%}
    {%- for c in columns if c['name'] == k -%}{%- do key.append(c) -%}{%- endfor -%}
  {%- endfor -%}
  {%- set ttl_deletes = decl.get('ttl_deletes', 'delete') -%}
  {%- if ttl_deletes not in ['delete', 'keep'] -%}
    {{ exceptions.raise_compiler_error(where ~ ".ttl_deletes is '" ~ ttl_deletes ~ "'; use delete (default) or keep") }}
  {%- endif -%}
  {%- set materialization = decl.get('materialization', 'incremental') -%}
  {%- if materialization not in ['incremental', 'materialized_view'] -%}
    {{ exceptions.raise_compiler_error(where ~ ".materialization is '" ~ materialization ~ "'; use incremental (default) or materialized_view") }}
  {%- endif -%}
  {{ return({'name': decl.get('dynamodb_table', table_name), 'declaration': table_name, 'key': key, 'columns': columns,
             'ttl_deletes': ttl_deletes, 'materialization': materialization}) }}
{% endmacro %}

{#- The column type of a non-key column: Nullable unless the type cannot be.
    LowCardinality stays only around strings (ClickHouse refuses it around
    numbers by default), matching what attribute_value returns. -#}
{% macro _nullable_type(t) %}
  {%- set s = t | trim -%}
  {%- if s.startswith('Nullable(') or s.startswith('LowCardinality(Nullable(') or s.startswith('Array(')
        or s.startswith('Map(') or s.startswith('Tuple(') or s.startswith('JSON') -%}
    {{ return(s) }}
  {%- elif s.startswith('LowCardinality(') and s[15:-1] | trim in ['String', 'FixedString'] -%}
    {{ return('LowCardinality(Nullable(' ~ s[15:-1] ~ '))') }}
  {%- elif s.startswith('LowCardinality(') -%}
    {{ return('Nullable(' ~ s[15:-1] ~ ')') }}
  {%- else -%}
    {{ return('Nullable(' ~ s ~ ')') }}
  {%- endif -%}
{% endmacro %}

{#- The column type of a key column: never Nullable (it is in ORDER BY). -#}
{% macro _key_type(t) %}
  {%- set s = t | trim -%}
  {%- if s.startswith('Nullable(') -%}
    {{ return(s[9:-1]) }}
  {%- elif s.startswith('LowCardinality(Nullable(') -%}
    {{ return('LowCardinality(' ~ s[24:-2] ~ ')') }}
  {%- else -%}
    {{ return(s) }}
  {%- endif -%}
{% endmacro %}
