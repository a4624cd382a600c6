"""Reports about runs and graphs: text summaries, JSON, Mermaid and DOT."""
