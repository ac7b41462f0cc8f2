"""The IAM kinds; modules starting with `_` are the service's floor under them."""
