{{ dynamodb_cdc.current_view(ref('ttl_keep_changes')) }}
