{{ dynamodb_cdc.current_view(ref('props_live_changes')) }}
