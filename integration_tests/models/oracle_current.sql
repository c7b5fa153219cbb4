{{ dynamodb_cdc.current_view(ref('oracle_changes')) }}
