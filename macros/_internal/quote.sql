{#-
  Quoting for ClickHouse SQL.  Every name and every text value this package
  writes into SQL goes through one of these two macros, so no name (attribute,
  column, table) can break out of its quotes.

    quote_identifier('weird `name')  ->  `weird \`name`
    string_literal("it's a\\b")      ->  'it\'s a\\b'

  ClickHouse reads backslash escapes inside both quoting styles, so the
  backslash is escaped first, then the quote character.  NUL, newline,
  carriage return and tab are written as escapes too, so the SQL text stays
  on one line and printable.
-#}

{% macro quote_identifier(name) %}
  {%- if name is none or (name is string and name == '') -%}
    {{ exceptions.raise_compiler_error("dynamodb_cdc.quote_identifier: an identifier cannot be empty") }}
  {%- endif -%}
  {{ return('`' ~ dynamodb_cdc._escape_sql_text(name ~ '', '`') ~ '`') }}
{% endmacro %}


{% macro string_literal(s) %}
  {%- if s is none -%}
    {{ exceptions.raise_compiler_error("dynamodb_cdc.string_literal: got none; write NULL in SQL instead of a literal") }}
  {%- endif -%}
  {{ return("'" ~ dynamodb_cdc._escape_sql_text(s ~ '', "'") ~ "'") }}
{% endmacro %}


{#- Backslash-escapes `text` for use between two `quote` characters. -#}
{% macro _escape_sql_text(text, quote) %}
  {{ return(text.replace('\\', '\\\\').replace(quote, '\\' ~ quote)
                .replace('\0', '\\0').replace('\n', '\\n').replace('\r', '\\r').replace('\t', '\\t')) }}
{% endmacro %}


{#- A relation read with FINAL, as a FROM item.  dbt's --empty (and --sample) renders a ref or
    source as a subquery, which ClickHouse cannot read with FINAL: the limit then goes around the
    FINAL read instead. -#}
{% macro _final(relation) %}
  {%- if relation.render is not defined -%}
    {{ return(relation ~ " FINAL") }}
  {%- elif relation.limit is none -%}
    {{ return(relation.render() ~ " FINAL") }}
  {%- else -%}
    {{ return("(SELECT * FROM " ~ relation.render() ~ " FINAL LIMIT " ~ (relation.limit | int) ~ ")") }}
  {%- endif -%}
{% endmacro %}
