{{ dynamodb_cdc.current_view(ref('users_changes')) }}
