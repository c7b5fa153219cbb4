{{ dynamodb_cdc.current_view(ref('props_changes')) }}
