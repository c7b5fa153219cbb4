{{ dynamodb_cdc.current_view(ref('orders_changes')) }}
