{{ dynamodb_cdc.changes_model('drift') }}
