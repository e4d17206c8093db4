"""Learned parts of the arranger (algorithms.md §2.2–2.3), in torch: the chord/texture VAE
re-harmonizer and contrastive texture embeddings for the transition score."""
