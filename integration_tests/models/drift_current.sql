{{ dynamodb_cdc.current_view(ref('drift_changes')) }}
