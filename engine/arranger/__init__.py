"""The arranger (AccoMontage §3.3): a piano texture per phrase, re-harmonized to the chords,
kept out of the melody's way. Entry point: `engine.arranger.arrange.arrange_piano`."""
