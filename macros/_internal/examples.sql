{#- The example models build only when this package is the root project, or when asked for. -#}
{% macro _examples_enabled() %}
  {{ return(project_name == 'dynamodb_cdc' or (var('dynamodb_cdc_enable_examples', false) | string | lower == 'true')) }}
{% endmacro %}
