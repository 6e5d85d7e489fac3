"""Advice: turning a person's needs (stated, from their profile, from a skin report) into ranked products
and routines, using the ingredient knowledge base. `inputs` reads the needs, `recommender` ranks and re-reads
the catalog, `routine` plans; the tools in `shine_mcp.tools.advice` and `shine_mcp.tools.profile` call them
and shape the answers."""
