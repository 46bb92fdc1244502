"""Per-language evaluation: batched greedy generation, then task scoring and response-language checks."""
