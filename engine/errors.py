"""The engine's error types: every bad-input condition maps to one of these, with a message a
musician can act on. All subclass built-in exceptions so callers may catch broadly."""

from __future__ import annotations


class EngineError(Exception):
    """Base for all engine errors whose message is meant for the user."""


class BadInputError(EngineError, ValueError):
    """The input (file, melody, options) cannot be used; the message says why."""


class MidiFileError(BadInputError):
    """A MIDI/MusicXML file is missing, empty, corrupt or has no usable melody."""


class UnsupportedMeterError(BadInputError):
    """A time signature the engine has no templates for."""


class PhraseStringError(BadInputError):
    """A user phrase string does not parse or does not fit the melody."""


class OptionError(BadInputError):
    """An unknown style, key name, or an out-of-range option."""


class LibraryError(EngineError, OSError):
    """The shipped template library is missing or unreadable."""
