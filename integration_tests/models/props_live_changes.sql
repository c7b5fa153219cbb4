{{ dynamodb_cdc.changes_model('props_live') }}
