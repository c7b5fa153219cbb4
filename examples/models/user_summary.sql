{#- A per-user summary that `dynamodb-cdc push` writes back to DynamoDB (exposure user_summary_dynamodb). -#}
{{ config(materialized='table', order_by='user_id') }}
SELECT
    u.id AS user_id,
    u.first_name AS first_name,
    u.age AS age,
    countIf(o.customer_id = u.id) AS orders,
    ifNull(sumIf(o.total, o.customer_id = u.id), toDecimal128(0, 2)) AS total_spent,
    countIf(o.customer_id = u.id AND o.paid) AS paid_orders
FROM {{ ref('users_current') }} AS u
LEFT JOIN {{ ref('orders_current') }} AS o ON o.customer_id = u.id
GROUP BY u.id, u.first_name, u.age
