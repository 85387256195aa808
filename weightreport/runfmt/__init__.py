"""The run directory's contract: the schema of tables and columns, the atomic writer, and the one reader."""
