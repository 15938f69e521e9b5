"""Tools for existing TFRecords, one module per command.

Data flow: PATH -> locate (shards, manifest entries) -> scan (records and damage, with
resync) -> count | inspect | verify | repair | index.
"""
