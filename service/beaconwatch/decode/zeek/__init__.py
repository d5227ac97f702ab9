"""Zeek conn.log decoders (JSON and TSV) over one columnar row accumulator."""
