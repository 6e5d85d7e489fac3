"""Selling: carts, checkout, the order state machine, refunds, webhooks, fulfilment and the sales report.

Plain async functions and small classes over `shine_mcp.store` and `shine_mcp.integrations`; the MCP tools
(`shine_mcp.tools.checkout`), the web shell (`web_shell.payments`) and the CLI (`shine orders`) call them.
"""
