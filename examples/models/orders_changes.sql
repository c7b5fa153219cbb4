{{ dynamodb_cdc.changes_model('orders') }}
