"""The one-command development stack: all three services on this machine, SQLite in ./data."""
