"""Manifest layer: strict YAML loading, schema and semantic validation, expansion."""
