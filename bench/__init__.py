"""`make bench`'s pure parts (the bound, the critical path, the proxy check), importable by unit tests."""
