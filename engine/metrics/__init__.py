"""Objective evaluation measures on the 16th-note grid (docs/evaluation.md): `harmony` judges a
chord track against its melody, `accompaniment` a piano part against melody and chords."""
