{#- An example: builds only when this package is the root project (see dbt_project.yml vars). -#}
{%- if dynamodb_cdc._examples_enabled() %}
{{ dynamodb_cdc.current_view(ref('users_changes')) }}
{%- else %}
{{ config(enabled=false) }}
{%- endif %}
