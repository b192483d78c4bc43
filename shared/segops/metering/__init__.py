"""Usage metering: billable units per tenant and hour, counted once, stored in ClickHouse."""
