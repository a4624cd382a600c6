"""The workflow model and the engine. Knows nothing of pytest; does no I/O beyond what ``execution`` provides."""
