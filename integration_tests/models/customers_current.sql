{{ dynamodb_cdc.current_view(ref('customers_changes')) }}
