"""Terminal I/O shared by the commands: apply's progress reporters."""
