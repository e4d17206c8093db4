"""Libraries the engine searches: chord-progression templates (and later textures)."""
