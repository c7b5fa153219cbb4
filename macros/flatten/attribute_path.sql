{#-
  attribute_path(item_expr, path)

  SQL expression (String) of the DynamoDB JSON AttributeValue found at `path`
  in the item `item_expr` (a DynamoDB JSON item such as `{"a": {"S": "x"}}`),
  for instance '{"S":"x"}'; '' when the attribute (or a map on the way) is
  missing.  Feed it to attribute_value() and conversion_failed().

    path  a list: the top-level attribute name, then, for each level down,
          the key of a nested map (M) as a string or the position in a list
          (L) as an integer (0 is the first element, -1 the last).  A string
          is ONE attribute name: it is not split on dots, since DynamoDB
          attribute names may contain dots.  In YAML, [items, 0, sku] is the
          `sku` of the first element of the list `items`; [items, "0"] is the
          key "0" of the map `items`.

      {{ dynamodb_cdc.attribute_path('_item', ['shipping', 'city']) }}
      -> JSONExtractRaw(_item, 'shipping', 'M', 'city')
      {{ dynamodb_cdc.attribute_path('_item', ['lines', 0, 'sku']) }}
      -> JSONExtractRaw(_item, 'lines', 'L', 1, 'M', 'sku')

  Each name is written as an escaped SQL string literal (string_literal), so
  any name (quotes, backslashes, backticks, unicode) is matched as is.
-#}
{% macro attribute_path(item_expr, path) %}
  {{ return(adapter.dispatch('attribute_path', 'dynamodb_cdc')(item_expr, path)) }}
{% endmacro %}

{% macro default__attribute_path(item_expr, path) %}
  {{ exceptions.raise_compiler_error(
      "dynamodb_cdc.attribute_path supports only ClickHouse (profile type clickhouse or chdb); "
      ~ "this target is '" ~ target.type ~ "'.") }}
{% endmacro %}

{% macro clickhouse__attribute_path(item_expr, path) %}
  {%- set keys = dynamodb_cdc._path_keys(dynamodb_cdc._attribute_names(path)) -%}
  {{ return('JSONExtractRaw(' ~ item_expr ~ ', ' ~ keys | join(', ') ~ ')') }}
{% endmacro %}


{#- The JSONExtract keys (SQL literals) of checked path names: each level below the first
    goes through its container's tag ('M' for a map key, 'L' for a list position). -#}
{% macro _path_keys(names) %}
  {%- set keys = [] -%}
  {%- for name in names -%}
    {%- if name is integer -%}
      {#- ClickHouse JSON indexes are 1-based; negative ones count from the end. -#}
      {%- do keys.extend(["'L'", (name + 1 if name >= 0 else name) ~ '']) -%}
    {%- else -%}
      {%- if not loop.first -%}{%- do keys.append("'M'") -%}{%- endif -%}
      {%- do keys.append(dynamodb_cdc.string_literal(name)) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(keys) }}
{% endmacro %}


{#- The path as a list of attribute names (strings) and list positions (integers), checked. -#}
{% macro _attribute_names(path) %}
  {%- set names = [path] if path is string else path -%}
  {%- if names is none or names is mapping or names is not iterable or names | length == 0 -%}
    {{ exceptions.raise_compiler_error(
        "dynamodb_cdc.attribute_path: path must be an attribute name or a non-empty list of "
        ~ "attribute names (top-level attribute, then nested map keys); got " ~ path) }}
  {%- endif -%}
  {%- set out = [] -%}
  {%- for name in names -%}
    {%- if name is none or name is mapping or (name is iterable and name is not string) or (name ~ '') == '' -%}
      {{ exceptions.raise_compiler_error(
          "dynamodb_cdc.attribute_path: path " ~ path ~ " has an empty or invalid attribute name at position "
          ~ loop.index0 ~ "; each element must be a non-empty attribute name") }}
    {%- endif -%}
    {%- if name is boolean or name is float -%}
      {{ exceptions.raise_compiler_error(
          "dynamodb_cdc.attribute_path: path " ~ path ~ " has " ~ name ~ " at position " ~ loop.index0
          ~ ", which YAML read as a boolean or a float, not as a name; quote the attribute name") }}
    {%- endif -%}
    {%- if name is integer and loop.first -%}
      {{ exceptions.raise_compiler_error(
          "dynamodb_cdc.attribute_path: path " ~ path ~ " starts with the list position " ~ name
          ~ "; it must start with a top-level attribute name (quote it if the name is a number)") }}
    {%- endif -%}
    {%- do out.append(name if name is integer else name ~ '') -%}
  {%- endfor -%}
  {{ return(out) }}
{% endmacro %}
