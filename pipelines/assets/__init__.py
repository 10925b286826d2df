"""Assets, one module per stage group."""
