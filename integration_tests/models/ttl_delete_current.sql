{{ dynamodb_cdc.current_view(ref('ttl_delete_changes')) }}
