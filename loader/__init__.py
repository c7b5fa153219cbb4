"""dynamodb-cdc: land DynamoDB exports and change streams in ClickHouse, unparsed."""

__version__ = "0.1.0"
