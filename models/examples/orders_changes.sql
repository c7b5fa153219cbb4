{#- An example: builds only when this package is the root project (see dbt_project.yml vars). -#}
{%- if dynamodb_cdc._examples_enabled() %}
{{ dynamodb_cdc.changes_model('orders') }}
{%- else %}
{{ config(enabled=false) }}
{%- endif %}
