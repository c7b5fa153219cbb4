{{ dynamodb_cdc.changes_model('ttl_delete') }}
