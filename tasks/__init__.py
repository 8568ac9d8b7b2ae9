"""I/O steps: repository functions on a caller's session, and the Prefect tasks around them."""
