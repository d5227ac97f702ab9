"""Batch-scanning decoders (goflow2 JSON, protobuf): numba scanners, each with a reference."""
