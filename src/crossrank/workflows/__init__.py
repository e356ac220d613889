"""End-to-end jobs built from the library: the quickstart (train, rerank, evaluate, report)."""
