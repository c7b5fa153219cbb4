{#-
  The type map: how a DynamoDB JSON AttributeValue (one object with one type
  tag, e.g. {"N":"12.50"}) becomes a value of a declared ClickHouse type.
  This is the package's only type map; every model converts through it.

  attribute_value(av_expr, ch_type, binary='base64') returns a SQL expression
  of type Nullable(<ch_type>) (LowCardinality(Nullable(String)) for
  LowCardinality(String); other LowCardinality(T) give Nullable(T)).
  A value is EXACT or NULL: nothing is rounded, truncated, clamped, wrapped
  around or sent through a float unless the declared type is a float.
  conversion_failed() is 1 when NULL came out of a value that was there
  (any type tag but NULL).

  | declared type (optionally in Nullable(...) / LowCardinality(...)) | tag  | value                                            |
  |-------------------------------------------------------------------|------|--------------------------------------------------|
  | String                                                            | S    | the string                                       |
  |                                                                   | N    | the number text exactly as written ("1.50")      |
  |                                                                   | BOOL | 'true' / 'false'                                 |
  |                                                                   | B    | binary='base64': the base64 text as stored;      |
  |                                                                   |      | binary='bytes': the decoded bytes (NULL if the   |
  |                                                                   |      | text is not valid base64)                        |
  |                                                                   | M L  | the AttributeValue as DynamoDB JSON text, e.g.   |
  |                                                                   | SS NS| '{"M":{"city":{"S":"Paris"}}}': exact (numbers   |
  |                                                                   | BS   | stay strings), queryable with JSONExtract*       |
  | Int8 Int16 Int32 Int64 Int128 Int256                              | N, S | the exact integer; NULL when the number has a    |
  | UInt8 UInt16 UInt32 UInt64 UInt128 UInt256                        |      | non-zero fractional part, is outside the type's  |
  |                                                                   |      | range, or is not a number.  "12.0", "1E+2",      |
  |                                                                   |      | "1.5E+1", "007", "+5", "-0" are integers.        |
  | Decimal(P, S), Decimal(P) (S = 0), Decimal32(S) (P = 9),          | N, S | the exact value; NULL when it has more than S    |
  | Decimal64(S) (P = 18), Decimal128(S) (P = 38),                    |      | fractional digits (trailing zeros do not count)  |
  | Decimal256(S) (P = 76)                                            |      | or more than P - S integer digits                |
  | Float32, Float64                                                  | N, S | the nearest float (declaring a float accepts     |
  |                                                                   |      | rounding, also of tiny values to 0); NULL when   |
  |                                                                   |      | not a number or beyond the float's range (inf)   |
  | Bool                                                              | BOOL | true / false                                     |
  |                                                                   | S    | 'true' / 'false' exactly; other text is NULL     |
  | UUID                                                              | S    | the UUID written 8-4-4-4-12 hex digits (any case)|
  | Date, Date32                                                      | S    | a valid date written YYYY-MM-DD within the type's|
  |                                                                   |      | range; NULL otherwise (never clamped or rolled)  |
  |                                                                   | N    | epoch seconds: the UTC date of that instant      |
  |                                                                   |      | (1767323045.678 -> 2026-01-02); NULL when not a  |
  |                                                                   |      | number or out of the type's range                |
  | DateTime, DateTime('tz'), DateTime64(P), DateTime64(P, 'tz')      | S    | ISO 8601: YYYY-MM-DD or                          |
  |                                                                   |      | YYYY-MM-DD(T| )hh:mm:ss[.fff][Z|+hh:mm|-hh:mm];  |
  |                                                                   |      | no offset = UTC.  NULL when invalid, when the    |
  |                                                                   |      | fraction has more than P digits (DateTime: P=0)  |
  |                                                                   |      | or the instant is out of the type's range        |
  |                                                                   | N    | epoch seconds, e.g. 1767323045.678; NULL with    |
  |                                                                   |      | more than P fractional digits or out of range    |
  | Array(T), T any type above (Nullable(T) allows NULL elements)     | SS NS| the elements converted as T (a set's members as  |
  |                                                                   | BS   | S, N or B values), sorted ascending (sets have   |
  |                                                                   |      | no order)                                        |
  |                                                                   | L    | the elements converted as T, in list order       |
  | Map(String, T)                                                    | M    | each key with its value converted as T           |
  | any scalar type above                                             | NULL | NULL (not a conversion failure)                  |
  | any scalar type above                                             | none | NULL (attribute missing; not a failure)          |
  | any scalar type above                                             | any  | other tags (e.g. BOOL for Int64, N for Date, M   |
  |                                                                   | other| for Int64): NULL and a conversion failure        |
  | Array(T), Map(String, T)                                          | any  | empty when the attribute is missing or NULL (not |
  |                                                                   |      | a failure); empty AND a conversion failure when  |
  |                                                                   |      | the tag does not fit or ANY element does not     |
  |                                                                   |      | convert (a NULL element needs Nullable(T)):      |
  |                                                                   |      | never a partial collection.  ClickHouse has no   |
  |                                                                   |      | Nullable Array or Map.                           |

  Type drift (one attribute holding different tags in different items) is
  resolved by the declared type, per item, from whichever tag is there: a
  number column reads an N or the text of an S with the same exact rules
  ("42" and 42 both give 42; "42 " gives NULL and a failure); String reads
  every tag; a failed item is counted by conversion_failed and its value
  stays in the raw data, never lost.

  Any other declared type (FixedString, Tuple, JSON, IPv4, Enum, nested
  Array(Array(...)), Map with non-String keys, ...) is a compile error: not
  supported yet.  Declare String to keep such a value as DynamoDB JSON text.

  Numbers.  An N is "a number" when it matches
      [+-] digits [. digits] [(e|E) [+-] 1-6 digits]     (at least one digit)
  The integer and Decimal conversions first rewrite it in an exact normal
  form, (valid, negative, significant digits, point), the value being
  0.<digits> x 10^point, with leading and trailing zeros removed ('' means
  zero, which is never negative).  The type check is then made on digit
  counts, and the number is handed to ClickHouse as plain decimal text that
  fits the type (no exponent, no extra digits), which ClickHouse parses
  exactly.  For integers the result is also printed back and compared with
  that text, because ClickHouse's own string-to-(U)Int256 parse wraps around
  past 2^255 / 2^256.
-#}


{% macro attribute_value(av_expr, ch_type, binary='base64') %}
  {{ return(adapter.dispatch('attribute_value', 'dynamodb_cdc')(av_expr, ch_type, binary)) }}
{% endmacro %}

{% macro default__attribute_value(av_expr, ch_type, binary='base64') %}
  {{ exceptions.raise_compiler_error(
      "dynamodb_cdc.attribute_value supports only ClickHouse (profile type clickhouse or chdb); "
      ~ "this target is '" ~ target.type ~ "'.") }}
{% endmacro %}

{% macro clickhouse__attribute_value(av_expr, ch_type, binary='base64') %}
  {%- set t = dynamodb_cdc._type_info(ch_type) -%}
  {%- set binary = dynamodb_cdc._binary_mode(binary) -%}
  {%- set av = av_expr -%}
  {%- if t.kind in ['array', 'map'] -%}
    {{ return(dynamodb_cdc._typed_parts(av, ch_type, binary).value) }}
  {%- endif -%}
  {#- The text of an N, or of an S (type drift: "42" in one item, 42 in another);
      '' for anything else, which is not a number. -#}
  {%- set n = dynamodb_cdc._plain_text(av, 'N', "multiIf(" ~ dynamodb_cdc._has_tag(av, 'N', 'String') ~ ", JSONExtractString(" ~ av ~ ", 'N'), "
      ~ dynamodb_cdc._has_tag(av, 'S', 'String') ~ ", JSONExtractString(" ~ av ~ ", 'S'), '')") -%}
  {%- if t.kind == 'string' -%}
    {%- set b = "JSONExtractString(" ~ av ~ ", 'B')" -%}
    {%- if binary == 'bytes' -%}
      {%- set b = "if(" ~ b ~ " = '' OR tryBase64Decode(" ~ b ~ ") != '', tryBase64Decode(" ~ b ~ "), NULL)" -%}
    {%- endif -%}
    {%- set value = dynamodb_cdc._plain_text(av, 'S', "multiIf("
        ~ dynamodb_cdc._has_tag(av, 'S', 'String') ~ ", JSONExtractString(" ~ av ~ ", 'S'), "
        ~ dynamodb_cdc._has_tag(av, 'N', 'String') ~ ", JSONExtractString(" ~ av ~ ", 'N'), "
        ~ dynamodb_cdc._has_tag(av, 'BOOL', 'Bool') ~ ", if(JSONExtractBool(" ~ av ~ ", 'BOOL'), 'true', 'false'), "
        ~ dynamodb_cdc._has_tag(av, 'B', 'String') ~ ", " ~ b ~ ", "
        ~ dynamodb_cdc._is_container(av) ~ ", JSONExtractRaw(" ~ av ~ "), NULL)") -%}
  {%- elif t.kind == 'integer' -%}
    {%- set value = dynamodb_cdc._exact_integer("_num", t.base, t.digits) -%}
  {%- elif t.kind == 'decimal' -%}
    {%- set value = dynamodb_cdc._exact_decimal("_num", t.precision, t.scale) -%}
  {%- elif t.kind == 'float' -%}
    {%- set value = "arrayMap(f -> if(isFinite(f), f, NULL), [if(match(_num, "
        ~ dynamodb_cdc.string_literal(dynamodb_cdc._number_regex()) ~ "), to" ~ t.base ~ "OrNull(_num), NULL)])[1]" -%}
  {%- elif t.kind == 'bool' -%}
    {#- compact {"BOOL":true} / {"BOOL":false} compared as text first, without parsing -#}
    {%- set value = "multiIf(" ~ av ~ " = '{\"BOOL\":true}', true, " ~ av ~ " = '{\"BOOL\":false}', false, "
        ~ dynamodb_cdc._has_tag(av, 'BOOL', 'Bool') ~ ", JSONExtractBool(" ~ av ~ ", 'BOOL'), "
        ~ dynamodb_cdc._has_tag(av, 'S', 'String') ~ " AND JSONExtractString(" ~ av ~ ", 'S') IN ('true', 'false'), "
        ~ "JSONExtractString(" ~ av ~ ", 'S') = 'true', NULL)" -%}
  {%- else -%}
    {#- UUID, Date, Date32, DateTime, DateTime64: from the text of an S. -#}
    {%- set text = dynamodb_cdc._plain_text(av, 'S', "if(" ~ dynamodb_cdc._has_tag(av, 'S', 'String') ~ ", JSONExtractString(" ~ av ~ ", 'S'), '')") -%}
    {%- if t.kind == 'uuid' -%}
      {%- set value = "arrayMap(u -> if(toString(toUUIDOrNull(u)) = lower(u), toUUIDOrNull(u), NULL), [" ~ text ~ "])[1]" -%}
    {%- elif t.kind == 'date' -%}
      {#- ISO text in an S, or epoch seconds in an N. -#}
      {%- set value = "coalesce(" ~ dynamodb_cdc._exact_date(text, t.base) ~ ", " ~ dynamodb_cdc._epoch_date(
          "if(" ~ dynamodb_cdc._has_tag(av, 'N', 'String') ~ ", JSONExtractString(" ~ av ~ ", 'N'), '')", t.base) ~ ")" -%}
    {%- else -%}
      {#- ISO text in an S, or epoch seconds in an N. -#}
      {%- set value = "coalesce(" ~ dynamodb_cdc._exact_datetime(text, t) ~ ", " ~ dynamodb_cdc._epoch_datetime(
          "if(" ~ dynamodb_cdc._has_tag(av, 'N', 'String') ~ ", JSONExtractString(" ~ av ~ ", 'N'), '')", t) ~ ")" -%}
    {%- endif -%}
  {%- endif -%}
  {%- if t.kind in ['integer', 'decimal', 'float'] -%}
    {#- The number text is computed once and handed to the conversion as the lambda parameter
        _num: written out in each place instead, ClickHouse evaluates the parsing fallback of
        _plain_text for every row (6x the time of the number columns), short-circuit or not. -#}
    {%- set value = "arrayMap(_num -> " ~ value ~ ", [" ~ n ~ "])[1]" -%}
  {%- endif -%}
  {{ return("CAST(" ~ value ~ ", " ~ dynamodb_cdc.string_literal(t.result_type) ~ ")") }}
{% endmacro %}


{#-
  conversion_failed(av_expr, ch_type, binary='base64'): UInt8 SQL expression,
  1 when the AttributeValue `av_expr` is there with a type tag other than
  NULL but attribute_value(av_expr, ch_type, binary) is NULL: a value lost in
  conversion (an N out of range or with too many digits, a tag that does not
  map to the declared type, invalid base64 with binary='bytes', ...).
  0 for a missing attribute ('' or JSON null) and for {"NULL": true}.
-#}
{% macro conversion_failed(av_expr, ch_type, binary='base64') %}
  {{ return(adapter.dispatch('conversion_failed', 'dynamodb_cdc')(av_expr, ch_type, binary)) }}
{% endmacro %}

{% macro default__conversion_failed(av_expr, ch_type, binary='base64') %}
  {{ exceptions.raise_compiler_error(
      "dynamodb_cdc.conversion_failed supports only ClickHouse (profile type clickhouse or chdb); "
      ~ "this target is '" ~ target.type ~ "'.") }}
{% endmacro %}

{% macro clickhouse__conversion_failed(av_expr, ch_type, binary='base64') %}
  {{ return(dynamodb_cdc._typed_parts(av_expr, ch_type, binary).failed) }}
{% endmacro %}


{#-
  The conversion of the AttributeValue `av` to `ch_type` as parts a query can
  compute once and read twice: {'expr': SQL computing it (attribute_value, or
  for an Array / Map the (ok, value) pair of _collection), 'value': SQL of the
  value (what attribute_value returns), 'failed': SQL of conversion_failed},
  the last two reading the conversion through `ref` (a column the query
  computed as expr, e.g. `_tv_3`), or through expr itself when ref is none.
  The conversion comes first in 'failed': a query that also selects the value
  computes it once, and the JSON checks after it (AND short-circuits) run
  only for the rare value that is NULL.
-#}
{% macro _typed_parts(av, ch_type, binary='base64', ref=none) %}
  {%- set t = dynamodb_cdc._type_info(ch_type) -%}
  {%- set there = av ~ " NOT IN ('', 'null') AND NOT JSONHas(" ~ av ~ ", 'NULL')" -%}
  {%- if t.kind in ['array', 'map'] -%}
    {%- set expr = dynamodb_cdc._collection(av, t, dynamodb_cdc._binary_mode(binary)) -%}
    {%- set r = ref if ref else "(" ~ expr ~ ")" -%}
    {{ return({'expr': expr, 'value': "CAST(" ~ r ~ ".2, " ~ dynamodb_cdc.string_literal(t.result_type) ~ ")",
               'failed': "toUInt8(NOT (" ~ r ~ ".1) AND " ~ there ~ ")"}) }}
  {%- endif -%}
  {%- set expr = dynamodb_cdc.attribute_value(av, ch_type, binary) -%}
  {%- set r = ref if ref else "(" ~ expr ~ ")" -%}
  {{ return({'expr': expr, 'value': r, 'failed': "toUInt8(" ~ r ~ " IS NULL AND " ~ there ~ ")"}) }}
{% endmacro %}


{#- ---------------------------------------------------------------- private -#}

{#- 1 when the AttributeValue is an M, L, SS, NS or BS. -#}
{% macro _is_container(av) %}
  {{ return("(" ~ dynamodb_cdc._has_tag(av, 'M', 'Object') ~ " OR " ~ dynamodb_cdc._has_tag(av, 'L', 'Array')
            ~ " OR " ~ dynamodb_cdc._has_tag(av, 'SS', 'Array') ~ " OR " ~ dynamodb_cdc._has_tag(av, 'NS', 'Array')
            ~ " OR " ~ dynamodb_cdc._has_tag(av, 'BS', 'Array') ~ ")") }}
{% endmacro %}


{#-
  An Array(T) (from SS, NS, BS or L) or Map(String, T) (from M) column.
  Returns SQL of the pair (ok UInt8, value), value of type t.result_type once
  cast (_typed_parts reads both halves).  Each element
  goes through the scalar type map as an AttributeValue of its own (a set's
  strings as {"S": ...}, its numbers as {"N": ...}, its binaries as {"B": ...});
  ok = 1 when the attribute has an accepted tag and every element converts
  (a {"NULL": true} element converts only when T is Nullable).  The value is
  then the converted elements, sets sorted ascending by value (a set has no
  order), lists in their order; otherwise (missing, NULL, another tag, any
  element failing) it is empty: a collection column is never Nullable in
  ClickHouse, and conversion_failed tells an empty collection from a lost one.

  The elements are converted once: value and ok are the two halves of one
  (ok, value) expression, so a query that selects both (the changes model's
  column and its _conversion_errors) computes it once.
-#}
{% macro _collection(av, t, binary) %}
  {%- set el = t.element -%}
  {%- set convert = dynamodb_cdc.attribute_value("_e", el.declared, binary) -%}
  {#- _conv: the elements converted, NULL where one does not; _elems: their AttributeValues -#}
  {%- set converted_ok = "arrayAll((_x, _e) -> _x IS NOT NULL" ~ (" OR JSONHas(_e, 'NULL')" if el.nullable else "")
      ~ ", _conv, _elems)" -%}
  {%- set typed = "_conv" if el.nullable else "arrayMap(_x -> assumeNotNull(_x), _conv)" -%}
  {%- set elements_type = dynamodb_cdc.string_literal('Array(' ~ el.element_type ~ ')') -%}
  {%- set typed = "CAST(" ~ typed ~ ", " ~ elements_type ~ ")" -%}
  {%- if t.kind == 'array' -%}
    {%- set elems = "multiIf("
        ~ dynamodb_cdc._has_tag(av, 'L', 'Array') ~ ", JSONExtractArrayRaw(" ~ av ~ ", 'L'), "
        ~ dynamodb_cdc._has_tag(av, 'SS', 'Array') ~ ", arrayMap(_s -> concat('{\"S\":', _s, '}'), JSONExtractArrayRaw(" ~ av ~ ", 'SS')), "
        ~ dynamodb_cdc._has_tag(av, 'NS', 'Array') ~ ", arrayMap(_s -> concat('{\"N\":', _s, '}'), JSONExtractArrayRaw(" ~ av ~ ", 'NS')), "
        ~ dynamodb_cdc._has_tag(av, 'BS', 'Array') ~ ", arrayMap(_s -> concat('{\"B\":', _s, '}'), JSONExtractArrayRaw(" ~ av ~ ", 'BS')), "
        ~ "CAST([], 'Array(String)'))" -%}
    {%- set accepted = "(" ~ dynamodb_cdc._has_tag(av, 'L', 'Array') ~ " OR " ~ dynamodb_cdc._has_tag(av, 'SS', 'Array')
        ~ " OR " ~ dynamodb_cdc._has_tag(av, 'NS', 'Array') ~ " OR " ~ dynamodb_cdc._has_tag(av, 'BS', 'Array') ~ ")" -%}
    {%- set ok = "(" ~ accepted ~ " AND " ~ converted_ok ~ ")" -%}
    {%- set sorted = "if(" ~ dynamodb_cdc._has_tag(av, 'L', 'Array') ~ ", " ~ typed ~ ", arraySort(" ~ typed ~ "))" -%}
    {%- set result = "(toUInt8(" ~ ok ~ "), if(" ~ ok ~ ", " ~ sorted ~ ", CAST([], " ~ elements_type ~ ")))" -%}
    {%- set values = "_elems" -%}
  {%- else -%}
    {%- set elems = "if(" ~ dynamodb_cdc._has_tag(av, 'M', 'Object') ~ ", JSONExtractKeysAndValuesRaw(" ~ av ~ ", 'M'), "
        ~ "CAST([], 'Array(Tuple(String, String))'))" -%}
    {%- set ok = "(" ~ dynamodb_cdc._has_tag(av, 'M', 'Object') ~ " AND " ~ converted_ok ~ ")" -%}
    {%- set result = "(toUInt8(" ~ ok ~ "), mapFromArrays(if(" ~ ok ~ ", arrayMap(_kv -> _kv.1, _kv_elems), CAST([], 'Array(String)')), "
        ~ "if(" ~ ok ~ ", " ~ typed ~ ", CAST([], " ~ elements_type ~ "))))" -%}
    {%- set values = "arrayMap(_kv -> _kv.2, _kv_elems)" -%}
  {%- endif -%}
  {#- one (ok, value) pair: the element AttributeValues, then their conversions, each computed once -#}
  {%- if t.kind == 'array' -%}
    {%- set pair = "arrayMap(_elems -> arrayMap(_conv -> " ~ result ~ ", [arrayMap(_e -> " ~ convert ~ ", _elems)])[1], ["
        ~ elems ~ "])[1]" -%}
    {%- if el.kind == 'string' -%}
      {#- Strings in the compact form DynamoDB writes, none with an escape or a quote: an L of S
          ({"L":[{"S":"a"},{"S":"b"}]}) or an SS ({"SS":["a","b"]}) is cut apart as text, without
          parsing it (about half the time of an Array(String) column); the same values as the
          conversion above, which takes every other form. -#}
      {%- set s = '"[^"\\\\]*"' -%}
      {%- set pair = "multiIf(match(" ~ av ~ ", " ~ dynamodb_cdc.string_literal('^[{]"L":\\[([{]"S":' ~ s ~ '[}])(,[{]"S":' ~ s ~ '[}])*\\][}]$')
          ~ "), (toUInt8(1), CAST(splitByString('\"},{\"S\":\"', substring(" ~ av ~ ", 13, length(" ~ av ~ ") - 16)), " ~ elements_type ~ ")), "
          ~ "match(" ~ av ~ ", " ~ dynamodb_cdc.string_literal('^[{]"SS":\\[' ~ s ~ '(,' ~ s ~ ')*\\][}]$')
          ~ "), (toUInt8(1), arraySort(CAST(splitByString('\",\"', substring(" ~ av ~ ", 9, length(" ~ av ~ ") - 11)), " ~ elements_type ~ "))), "
          ~ pair ~ ")" -%}
    {%- endif -%}
  {%- else -%}
    {%- set pair = "arrayMap(_kv_elems -> arrayMap(_elems -> arrayMap(_conv -> " ~ result ~ ", [arrayMap(_e -> " ~ convert
        ~ ", _elems)])[1], [" ~ values ~ "])[1], [" ~ elems ~ "])[1]" -%}
  {%- endif -%}
  {{ return(pair) }}
{% endmacro %}


{#-
  The range of a DateTime / DateTime64(P) in ticks (10^-P seconds since the epoch)
  and the SQL that makes the value from the ticks expression `ticks`:
  DateTime 0..2^32-1 seconds; DateTime64 1900-01-01..2299-12-31 within Int64.
-#}
{% macro _ticks_range(t, ticks) %}
  {%- set p = t.precision -%}
  {%- if t.kind == 'datetime64' -%}
    {{ return({'lo': [-2208988800 * 10 ** p, -(2 ** 63)] | max, 'hi': [(10413791999 + 1) * 10 ** p - 1, 2 ** 63 - 1] | min,
               'make': "reinterpret(toInt64(" ~ ticks ~ "), " ~ dynamodb_cdc.string_literal(t.base) ~ ")"}) }}
  {%- else -%}
    {{ return({'lo': 0, 'hi': 2 ** 32 - 1,
               'make': "reinterpret(toUInt32(" ~ ticks ~ "), " ~ dynamodb_cdc.string_literal(t.base) ~ ")"}) }}
  {%- endif -%}
{% endmacro %}


{#-
  Exact DateTime / DateTime64(P) from epoch seconds: the number text `n` of an
  N (e.g. '1767323045' or '1767323045.678'), or NULL when it is not a number,
  has more than P fractional digits (trailing zeros do not count) or is out of
  the type's range (see _exact_datetime).
-#}
{% macro _epoch_datetime(n, t) %}
  {%- set p = t.precision -%}
  {%- set r = dynamodb_cdc._ticks_range(t, "_t") -%}
  {%- set lo, hi, make = r.lo, r.hi, r.make -%}
  {#- The instant in 10^-P seconds, as an exact integer: the number with its point moved P places. -#}
  {%- set ticks = "arrayMap(p -> if(p.1 AND (p.3 = '' OR (p.4 + " ~ p ~ " >= length(p.3) AND p.4 + " ~ p ~ " <= 20)), "
      ~ "if(p.3 = '', '0', concat(if(p.2, '-', ''), p.3, " ~ dynamodb_cdc._zeros("p.4 + " ~ p ~ " - length(p.3)", 20) ~ ")), NULL), ["
      ~ dynamodb_cdc._number_parts(n) ~ "])[1]" -%}
  {{ return("arrayMap(_t -> if(_t BETWEEN " ~ lo ~ " AND " ~ hi ~ ", " ~ make ~ ", NULL), [toInt128OrNull(" ~ ticks ~ ")])[1]") }}
{% endmacro %}


{#-
  Exact Date or Date32 (`base`) from epoch seconds, the number text `n` of an
  N: the UTC date of that instant (the seconds rounded down, so any fraction
  is fine), or NULL when it is not a number or the instant is outside the
  type's range (Date 1970-01-01..2149-06-06, Date32 1900-01-01..2299-12-31).
-#}
{% macro _epoch_date(n, base) %}
  {%- set lo, hi = (0, 5662310399) if base == 'Date' else (-2208988800, 10413791999) -%}
  {#- Whole seconds, rounded down, as an exact integer: the digits before the point (at most 20). -#}
  {%- set secs = "arrayMap(p -> if(p.1 AND p.4 <= 20, toInt128OrNull(if(p.3 = '' OR p.4 <= 0, '0', concat(substring(p.3, 1, p.4), "
      ~ dynamodb_cdc._zeros("p.4 - length(p.3)", 20) ~ "))) * if(p.2, -1, 1) - if(p.2 AND p.4 < length(p.3), 1, 0), NULL), ["
      ~ dynamodb_cdc._number_parts(n) ~ "])[1]" -%}
  {{ return("arrayMap(_s -> if(_s BETWEEN " ~ lo ~ " AND " ~ hi ~ ", to" ~ base ~ "(toDateTime64(toInt64(_s), 0, 'UTC')), NULL), ["
            ~ secs ~ "])[1]") }}
{% endmacro %}


{#-
  The text of an AttributeValue written exactly {"<tag>":"<text>"} with no quote
  or backslash in the text (the common case: AWS writes compact JSON), cut out
  of the JSON without parsing it; `general` (the same result by parsing) for
  anything else.  For valid JSON (which every AttributeValue the package's
  models pass is: cut by ClickHouse's JSON parser out of a raw row that parsed)
  such a text has no escape, so the cut text is what JSONExtractString returns.
  (A raw control character inside the quotes is not valid JSON; the models
  never pass one, and the type map's result for text that is not JSON is not
  defined.)
-#}
{% macro _plain_text(av, tag, general) %}
  {%- set head = '{"' ~ tag ~ '":"' -%}
  {{ return("if(match(" ~ av ~ ", " ~ dynamodb_cdc.string_literal('^[{]"' ~ tag ~ '":"[^"\\\\]*"[}]$') ~ "), substring("
            ~ av ~ ", " ~ (head | length + 1) ~ ", length(" ~ av ~ ") - " ~ (head | length + 2) ~ "), " ~ general ~ ")") }}
{% endmacro %}


{#- 1 when the AttributeValue has type tag `tag` holding a JSON value of `json_type`. -#}
{% macro _has_tag(av, tag, json_type) %}
  {{ return("JSONType(" ~ av ~ ", " ~ dynamodb_cdc.string_literal(tag) ~ ") = " ~ dynamodb_cdc.string_literal(json_type)) }}
{% endmacro %}


{#- What a number (the text of an N) must look like.  At most 6 exponent digits. -#}
{% macro _number_regex() %}
  {{ return('^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]{1,6})?$') }}
{% endmacro %}


{#-
  The exact normal form of a number text `n` (String expression), as a SQL
  tuple (valid UInt8, negative UInt8, digits String, point Int64):
  value = (-1 if negative) * 0.<digits> * 10^point, digits without leading
  or trailing zeros, '' for zero (then negative is 0).  valid = 0 when `n` is
  not a number (see _number_regex); the other fields are then meaningless.
  e.g. '-0012.50E+1' -> (1, 1, '125', 3);  '0.0010' -> (1, 0, '1', -2).
-#}
{% macro _number_parts(n) %}
  {%- set d = "concat(g[2], g[3])" -%}
  {{ return("arrayMap(g -> (notEmpty(g) AND " ~ d ~ " != '', g[1] = '-' AND trimBoth(" ~ d ~ ", '0') != '', trimBoth(" ~ d ~ ", '0'), "
            ~ "toInt64(length(g[2])) + toInt64OrZero(g[4]) - toInt64(length(" ~ d ~ ") - length(trimLeft(" ~ d ~ ", '0')))), "
            ~ "[extractGroups(" ~ n ~ ", '^([+-]?)([0-9]*)(?:[.]([0-9]*))?(?:[eE]([+-]?[0-9]{1,6}))?$')])[1]") }}
{% endmacro %}


{#- `count` zeros, with the count clamped to 0..limit (so a huge exponent never builds a huge string). -#}
{% macro _zeros(count, limit) %}
  {{ return("repeat('0', toUInt64(greatest(0, least(" ~ count ~ ", " ~ limit ~ "))))") }}
{% endmacro %}


{#-
  Exact integer of type `base` (e.g. 'Int64') from the number text `n`, or NULL.
  `digits`: the number of decimal digits of the type's largest value.
  The number must have no fractional digits and at most `digits` integer
  digits; it is written as plain integer text ('-' and digits, '0' for zero),
  parsed, and kept only if the parsed value prints back as the same text
  (out-of-range values come back NULL or wrapped around, so they fail).
-#}
{% macro _exact_integer(n, base, digits) %}
  {%- set text = "arrayMap(p -> if(p.1 AND (p.3 = '' OR (p.4 >= length(p.3) AND p.4 <= " ~ digits ~ ")), "
      ~ "if(p.3 = '', '0', concat(if(p.2, '-', ''), p.3, " ~ dynamodb_cdc._zeros("p.4 - length(p.3)", digits) ~ ")), NULL), ["
      ~ dynamodb_cdc._number_parts(n) ~ "])[1]" -%}
  {%- set cast = "accurateCastOrNull(i, " ~ dynamodb_cdc.string_literal(base) ~ ")" -%}
  {%- set exact = "arrayMap(i -> if(toString(" ~ cast ~ ") = i, " ~ cast ~ ", NULL), [" ~ text ~ "])[1]" -%}
  {#- The common case first: plain digits (a '-' for signed types), one fewer than the type's
      largest value has, always fit and parse exactly; anything else takes the exact path. -#}
  {%- set plain = ('^-?' if not base.startswith('U') else '^') ~ '[0-9]{1,' ~ (digits - 1) ~ '}$' -%}
  {{ return("if(match(" ~ n ~ ", " ~ dynamodb_cdc.string_literal(plain) ~ "), accurateCastOrNull(" ~ n ~ ", "
            ~ dynamodb_cdc.string_literal(base) ~ "), " ~ exact ~ ")") }}
{% endmacro %}


{#-
  Exact Decimal(precision, scale) from the number text `n`, or NULL.
  The number must have at most `scale` fractional digits and at most
  precision - scale integer digits; it is then written as plain decimal text
  ('-', integer digits, '.', fractional digits), which fits the type, and
  parsed.
-#}
{% macro _exact_decimal(n, precision, scale) %}
  {%- set limit = precision + scale + 1 -%}
  {%- set text = "arrayMap(p -> if(p.1 AND (p.3 = '' OR (p.4 <= " ~ (precision - scale) ~ " AND toInt64(length(p.3)) - p.4 <= " ~ scale ~ ")), "
      ~ "if(p.3 = '', '0', concat(if(p.2, '-', ''), multiIf("
      ~ "p.4 <= 0, concat('0.', " ~ dynamodb_cdc._zeros("-p.4", limit) ~ ", p.3), "
      ~ "p.4 >= length(p.3), concat(p.3, " ~ dynamodb_cdc._zeros("p.4 - length(p.3)", limit) ~ "), "
      ~ "concat(substring(p.3, 1, p.4), '.', substring(p.3, p.4 + 1))))), NULL), ["
      ~ dynamodb_cdc._number_parts(n) ~ "])[1]" -%}
  {%- set type = dynamodb_cdc.string_literal('Decimal(' ~ precision ~ ', ' ~ scale ~ ')') -%}
  {%- set exact = "accurateCastOrNull(" ~ text ~ ", " ~ type ~ ")" -%}
  {%- if precision == scale -%}
    {{ return(exact) }}
  {%- endif -%}
  {#- The common case first: plain decimal text that fits the type as written (at most
      precision - scale integer digits and scale fractional digits) parses exactly as it is;
      anything else takes the exact path. -#}
  {%- set plain = '^-?[0-9]{1,' ~ (precision - scale) ~ '}' ~ ('([.][0-9]{1,' ~ scale ~ '})?' if scale > 0 else '') ~ '$' -%}
  {{ return("if(match(" ~ n ~ ", " ~ dynamodb_cdc.string_literal(plain) ~ "), accurateCastOrNull(" ~ n ~ ", " ~ type ~ "), "
            ~ exact ~ ")") }}
{% endmacro %}


{#-
  Exact Date or Date32 (`base`) from the text `s` of an S, or NULL: the text
  must be a valid calendar date written YYYY-MM-DD within the type's range
  (Date 1970-01-01..2149-06-06, Date32 1900-01-01..2299-12-31); it must
  print back identically after parsing (ClickHouse clamps out-of-range dates
  and rolls 2024-02-30 over to March).
-#}
{% macro _exact_date(s, base) %}
  {%- set parse = "to" ~ base ~ "OrNull(d)" -%}
  {{ return("arrayMap(d -> if(toString(" ~ parse ~ ") = d AND d BETWEEN "
            ~ ("'1970-01-01' AND '2149-06-06'" if base == 'Date' else "'1900-01-01' AND '2299-12-31'")
            ~ ", " ~ parse ~ ", NULL), [" ~ s ~ "])[1]") }}
{% endmacro %}


{#-
  Exact DateTime / DateTime64(P[, tz]) from the ISO 8601 text `s` of an S, or NULL.
  Accepted: YYYY-MM-DD, or YYYY-MM-DD(T| )hh:mm:ss[.fraction][Z|+hh:mm|-hh:mm|+hhmm|-hhmm].
  Without an offset the time is UTC (whatever the column's time zone, which
  only changes how the instant is displayed).  NULL when the date or time is
  not valid (2024-02-30, 24:00:00, a leap second), when the fraction has more
  than P digits (trailing zeros do not count), or when the instant is outside
  the type's range (DateTime: 1970-01-01 00:00:00..2106-02-07 06:28:15 UTC;
  DateTime64: 1900-01-01..2299-12-31, and for P = 9 up to 2262-04-11).
  The instant is computed exactly as an integer number of 10^-P seconds
  since the epoch (days of the date * 86400 + time - offset) and becomes the
  value bit for bit (reinterpret), so nothing is parsed twice or rounded.
-#}
{% macro _exact_datetime(s, t) %}
  {%- set p = t.precision -%}
  {%- set r = dynamodb_cdc._ticks_range(t, "t.2") -%}
  {%- set lo, hi, make = r.lo, r.hi, r.make -%}
  {%- set offset = "if(g[6] IN ('', 'Z'), 0, if(startsWith(g[6], '-'), -1, 1) * (toInt64OrZero(substring(g[6], 2, 2)) * 3600 + toInt64OrZero(right(g[6], 2)) * 60))" -%}
  {%- set valid = "notEmpty(g) AND toString(toDate32OrNull(g[1])) = g[1] AND g[1] BETWEEN '1900-01-01' AND '2299-12-31' "
      ~ "AND toUInt8OrZero(g[2]) < 24 AND toUInt8OrZero(g[3]) < 60 AND toUInt8OrZero(g[4]) < 60 "
      ~ "AND (g[6] IN ('', 'Z') OR (toUInt8OrZero(substring(g[6], 2, 2)) < 24 AND toUInt8OrZero(right(g[6], 2)) < 60)) "
      ~ "AND length(trimRight(g[5], '0')) <= " ~ p -%}
  {%- set ticks = "(toInt128(toInt32(toDate32OrZero(g[1]))) * 86400 + toInt64OrZero(g[2]) * 3600 + toInt64OrZero(g[3]) * 60 + toInt64OrZero(g[4]) - "
      ~ offset ~ ") * " ~ (10 ** p) ~ (" + toInt128OrZero(rightPad(trimRight(g[5], '0'), " ~ p ~ ", '0'))" if p > 0 else "") -%}
  {{ return("arrayMap(t -> if(t.1 AND t.2 BETWEEN " ~ lo ~ " AND " ~ hi ~ ", " ~ make ~ ", NULL), [arrayMap(g -> (" ~ valid ~ ", " ~ ticks ~ "), "
            ~ "[extractGroups(" ~ s ~ ", '^([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.]([0-9]{1,18}))?(Z|[+-][0-9]{2}:?[0-9]{2})?)?$')])[1]])[1]") }}
{% endmacro %}


{% macro _binary_mode(binary) %}
  {%- set mode = 'base64' if binary is none else binary -%}
  {%- if mode not in ['base64', 'bytes'] -%}
    {{ exceptions.raise_compiler_error(
        "dynamodb_cdc: binary must be 'base64' (keep B values as their base64 text) or 'bytes' "
        ~ "(decode them); got '" ~ binary ~ "'") }}
  {%- endif -%}
  {{ return(mode) }}
{% endmacro %}


{#-
  The declared ClickHouse type `ch_type`, parsed.  Returns a dict:
    kind         'string', 'integer', 'decimal', 'float', 'bool', 'uuid', 'date',
                 'datetime' or 'datetime64'
    base         the type without Nullable / LowCardinality, e.g. 'Int64', 'Decimal(18, 2)'
    result_type  the type of attribute_value(): Nullable(base), or
                 LowCardinality(Nullable(String)) when declared LowCardinality(String)
    digits       (integer) decimal digits of the type's largest value
    precision, scale  (decimal; precision also for datetime/datetime64: digits of the fraction)
  Raises a compiler error for any type the type map does not support.
-#}
{% macro _type_info(ch_type, where=none) %}
  {%- set re = modules.re -%}
  {%- set declared = (ch_type ~ '') if ch_type is not none else '' -%}
  {%- set head = "dynamodb_cdc: " ~ ((where ~ ": ") if where else "") ~ "column type '" ~ declared ~ "'" -%}
  {%- set t = re.sub('\\s+', '', declared) -%}
  {%- set low_cardinality = t.startswith('LowCardinality(') and t.endswith(')') -%}
  {%- if low_cardinality -%}{%- set t = t[15:-1] -%}{%- endif -%}
  {%- set nullable = t.startswith('Nullable(') and t.endswith(')') -%}
  {%- if nullable -%}{%- set t = t[9:-1] -%}{%- endif -%}
  {%- set collection = none -%}
  {%- if t.startswith('Array(') and t.endswith(')') -%}
    {%- set collection = ('array', t[6:-1]) -%}
  {%- elif t.startswith('Map(String,') and t.endswith(')') -%}
    {%- set collection = ('map', t[11:-1]) -%}
  {%- endif -%}
  {%- if collection is not none -%}
    {%- if nullable or low_cardinality -%}
      {{ exceptions.raise_compiler_error(
          head ~ ": ClickHouse has no Nullable or LowCardinality Array or Map; "
          ~ "declare '" ~ t ~ "' (a missing attribute gives an empty " ~ collection[0] ~ ")") }}
    {%- endif -%}
    {%- set el = dynamodb_cdc._type_info(collection[1], where) -%}
    {%- if el.kind in ['array', 'map'] -%}
      {{ exceptions.raise_compiler_error(
          head ~ ": nested collections are not supported; declare the inner "
          ~ "value as String to keep it as DynamoDB JSON text, or read it with a path") }}
    {%- endif -%}
    {%- set result = ('Array(' if collection[0] == 'array' else 'Map(String, ') ~ el.element_type ~ ')' -%}
    {{ return({'kind': collection[0], 'base': result, 'result_type': result, 'element': el}) }}
  {%- endif -%}
  {%- set integer_digits = {'Int8': 3, 'UInt8': 3, 'Int16': 5, 'UInt16': 5, 'Int32': 10, 'UInt32': 10,
                            'Int64': 19, 'UInt64': 20, 'Int128': 39, 'UInt128': 39, 'Int256': 77, 'UInt256': 78} -%}
  {%- set decimal_precision = {'32': 9, '64': 18, '128': 38, '256': 76} -%}
  {%- set info = {} -%}
  {%- set m_decimal = re.fullmatch('Decimal\\(([0-9]+)(?:,([0-9]+))?\\)', t) -%}
  {%- set m_decimal_n = re.fullmatch('Decimal(32|64|128|256)\\(([0-9]+)\\)', t) -%}
  {%- set m_datetime64 = re.fullmatch("DateTime64\\(([0-9])(?:,'([A-Za-z0-9_/+-]+)')?\\)", t) -%}
  {%- set m_datetime = re.fullmatch("DateTime(?:\\('([A-Za-z0-9_/+-]+)'\\))?", t) -%}
  {%- if t == 'String' -%}
    {%- do info.update({'kind': 'string', 'base': 'String'}) -%}
  {%- elif t in integer_digits -%}
    {%- do info.update({'kind': 'integer', 'base': t, 'digits': integer_digits[t]}) -%}
  {%- elif m_decimal or m_decimal_n -%}
    {%- if m_decimal -%}
      {%- set precision = m_decimal.group(1) | int -%}
      {%- set scale = (m_decimal.group(2) or '0') | int -%}
    {%- else -%}
      {%- set precision = decimal_precision[m_decimal_n.group(1)] -%}
      {%- set scale = m_decimal_n.group(2) | int -%}
    {%- endif -%}
    {%- if precision < 1 or precision > 76 or scale > precision -%}
      {{ exceptions.raise_compiler_error(
          head ~ " is not a valid Decimal: precision must be 1 to 76 "
          ~ "and scale 0 to precision") }}
    {%- endif -%}
    {%- do info.update({'kind': 'decimal', 'base': 'Decimal(' ~ precision ~ ', ' ~ scale ~ ')',
                        'precision': precision, 'scale': scale}) -%}
  {%- elif t in ['Float32', 'Float64'] -%}
    {%- do info.update({'kind': 'float', 'base': t}) -%}
  {%- elif t in ['Bool', 'Boolean'] -%}
    {%- do info.update({'kind': 'bool', 'base': 'Bool'}) -%}
  {%- elif t in ['UUID'] -%}
    {%- do info.update({'kind': 'uuid', 'base': 'UUID'}) -%}
  {%- elif t in ['Date', 'Date32'] -%}
    {%- do info.update({'kind': 'date', 'base': t}) -%}
  {%- elif m_datetime64 or m_datetime -%}
    {%- set tz = (m_datetime64 or m_datetime).group(2 if m_datetime64 else 1) -%}
    {%- set tz_arg = (', ' ~ dynamodb_cdc.string_literal(tz)) if tz is not none else '' -%}
    {%- if m_datetime64 -%}
      {%- set precision = m_datetime64.group(1) | int -%}
      {%- do info.update({'kind': 'datetime64', 'base': 'DateTime64(' ~ precision ~ tz_arg ~ ')', 'precision': precision}) -%}
    {%- else -%}
      {%- do info.update({'kind': 'datetime', 'base': 'DateTime' ~ (('(' ~ tz_arg[2:] ~ ')') if tz is not none else ''),
                          'precision': 0}) -%}
    {%- endif -%}
  {%- else -%}
    {{ exceptions.raise_compiler_error(
        head ~ " is not supported yet (a later version adds more types). "
        ~ "Supported: String, Int8..Int256, UInt8..UInt256, Decimal(P, S), Decimal32(S)..Decimal256(S), "
        ~ "Float32, Float64, Bool, UUID, Date, Date32, DateTime[('tz')] and DateTime64(P[, 'tz']), "
        ~ "each optionally in Nullable(...) or LowCardinality(...), and Array(T) or Map(String, T) of those.") }}
  {%- endif -%}
  {#- LowCardinality is kept for strings only: ClickHouse refuses LowCardinality numbers by default. -#}
  {%- if low_cardinality and info.kind == 'string' -%}
    {%- do info.update({'result_type': 'LowCardinality(Nullable(' ~ info.base ~ '))'}) -%}
  {%- else -%}
    {%- do info.update({'result_type': 'Nullable(' ~ info.base ~ ')'}) -%}
  {%- endif -%}
  {#- As the element of an Array or Map: its type there, and the declared text to convert it with. -#}
  {%- set lc = 'LowCardinality(' if low_cardinality and info.kind == 'string' else '' -%}
  {%- do info.update({'declared': declared, 'nullable': nullable,
                      'element_type': lc ~ ('Nullable(' ~ info.base ~ ')' if nullable else info.base) ~ (')' if lc else '')}) -%}
  {{ return(info) }}
{% endmacro %}
