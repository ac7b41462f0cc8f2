"""Renderers: Plan / results / drift report -> str. They see only the plan model."""
