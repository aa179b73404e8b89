"""The `chorus` command: the embedded run, migrations and dev tokens."""
