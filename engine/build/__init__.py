"""Offline builders and trainers (each an argparse main: `python3 -m engine.build.NAME`): the
chord-template library, the POP909 donor import, the segment file and the learned models.
Nothing harmonize/arrange, the bridge or the UI run imports this package; they load what it
builds through `engine.library` and `engine.models`."""
