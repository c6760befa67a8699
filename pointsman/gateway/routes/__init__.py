"""One router module per resource: chat completions, the routing dry run, models, health and metrics."""
