"""Fault injection for integration tests: a loopback HTTP proxy in front of moto."""
