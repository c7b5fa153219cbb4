{{ dynamodb_cdc.current_table(ref('customers_changes'), 'customers') }}
