"""Sign-in and authorization: Shine's OAuth 2.1 authorization server for `/mcp`, web sessions, rate
limits and the audit log. `authority.Authority` ties them together for the web shell; `identity`
answers "who is calling" for tools. This package imports nothing at import time."""
