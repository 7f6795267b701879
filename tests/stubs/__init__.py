"""Stand-ins for real services that run as real processes (an OpenAI-compatible server)."""
