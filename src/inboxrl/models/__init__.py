"""Model backends: one interface over in-process local models and OpenAI-compatible endpoints."""
