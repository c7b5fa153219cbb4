{{ dynamodb_cdc.changes_model('bench_items') }}
