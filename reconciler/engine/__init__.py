"""I/O seams: AWS clients, concurrent reads, graph-ordered apply, locking, Docker."""
