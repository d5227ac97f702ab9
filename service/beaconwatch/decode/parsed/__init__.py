"""Object-per-flow decoders (pmacct, ECS): parsed JSON objects, texts resolved in bulk."""
