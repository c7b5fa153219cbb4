{{ dynamodb_cdc.changes_model('users') }}
