"""HTTP API: one module per area. Routes authenticate, validate, call one service and map the result."""
