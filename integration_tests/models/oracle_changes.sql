{{ dynamodb_cdc.changes_model('oracle') }}
