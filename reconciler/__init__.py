"""reconciler: make an AWS account match a YAML manifest, with no state file."""

__version__ = "0.1.0"
