"""How work physically runs: subprocesses and executors. Knows nothing of workflows."""
