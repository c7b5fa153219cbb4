{{ dynamodb_cdc.current_view(ref('bench_items_changes')) }}
