{{ dynamodb_cdc.changes_model('customers') }}
