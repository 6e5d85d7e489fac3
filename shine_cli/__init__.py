"""The `shine` command line: a user of the server (`shine_mcp`), the web shell and the agent, never used by
them. `cli.py` is the typer app; `chat.py`, `orders.py` and `subscriptions.py` are its subcommands."""
