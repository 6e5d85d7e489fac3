"""Advice: turning a person's needs (stated, from their profile, from a skin report) into ranked products
and routines, using the ingredient knowledge base. Pure computation over the catalog index; the tools
in `shine_mcp.tools.advice` and `shine_mcp.tools.profile` do the I/O."""
