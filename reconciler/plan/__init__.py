"""Pure planning: desired + live -> Plan. No boto3, docker, clock or I/O here."""
