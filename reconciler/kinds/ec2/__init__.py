"""The EC2 kinds; modules starting with `_` are the service's floor under them."""
