"""Per-phrase edits (engine.edits): locked phrases, alternatives, one-phrase re-generation and
re-arrangement, asserted on the chords and piano notes that come out."""

from dataclasses import replace

import pytest

from engine import edits
from engine.chords import chord_pitch_classes
from engine.demo import DEMO_TUNE, melody_from_steps
from engine.errors import BadInputError
from engine.pipeline import arrange, harmonize
from engine.types import (
    ArrangeOptions,
    Chord,
    ChordEvent,
    HarmonizeOptions,
    Key,
    MelodyAnalysis,
    Meter,
    Phrase,
    ProgressionChoice,
    Voicing,
)
from tests.builders import library, template

TONIC, IV, V = 0, 5, 7


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path, monkeypatch):
    # never the user's imported POP909 donors: the default texture library only
    monkeypatch.setenv("ACCOBRIDGE_DATA_DIR", str(tmp_path / "userdata"))


@pytest.fixture(scope="module")
def melody():
    return melody_from_steps(DEMO_TUNE * 2)  # 32 bars, four 8-bar phrases


@pytest.fixture(scope="module")
def song(melody):
    return harmonize(melody)


def _span(h, i):
    a = h.analysis
    p = a.phrases[i]
    return a.bar_start_16th(p.start_bar), a.bar_start_16th(p.end_bar)


def _ticks(h, i):
    lo, hi = _span(h, i)
    per = h.melody.ticks_per_16th
    return lo * per, hi * per


def test_locked_phrases_keep_their_chords_under_another_style_and_seed(melody, song):
    locked = {0: song.phrases[0].chosen, 2: song.phrases[2].chosen}
    out = edits.regenerate(melody, HarmonizeOptions(style="dark", seed=7), locked)
    assert out.phrases[0].chosen.chords == song.phrases[0].chosen.chords
    assert out.phrases[2].chosen.chords == song.phrases[2].chosen.chords
    # the free phrases were searched again in the new style: Dark colours minor chords
    free = [ev.chord for i in (1, 3) for ev in out.phrases[i].chosen.chords]
    assert free != [ev.chord for i in (1, 3) for ev in song.phrases[i].chosen.chords]
    assert any(c.quality in ("min7", "minadd9") for c in free)
    # the locked phrase still lists alternatives, none of them its own chords
    assert out.phrases[0].alternatives
    assert all(a.chords != song.phrases[0].chosen.chords for a in out.phrases[0].alternatives)


def test_locking_every_phrase_reproduces_the_song(melody, song):
    out = edits.regenerate(melody, HarmonizeOptions(seed=3),
                           {i: ph.chosen for i, ph in enumerate(song.phrases)})
    assert out.chords == song.chords
    assert out.chord_notes == song.chord_notes


def _macro_library():
    """Two-bar templates whose only junctions are V→I, I→IV and IV→V (within templates)."""
    return library([
        template(2, [(V, "maj", 8), (TONIC, "maj", 8)], count=5),
        template(2, [(TONIC, "maj", 8), (IV, "maj", 8)], count=5),
        template(2, [(IV, "maj", 8), (V, "maj", 8)], count=5),
    ])


def _lock(root, start, bars=2):
    return ProgressionChoice((), "pop_standard",
                             (ChordEvent(Chord(root, "maj", root), start, 16 * bars),),
                             micro=0.0, meso=0.0, prefix_score=0.0,
                             path_score=0.0)


@pytest.mark.parametrize(("locked_root", "expected_first"), [(V, TONIC), (TONIC, IV), (IV, V)])
def test_free_phrases_count_the_junction_from_a_locked_one(locked_root, expected_first):
    # phrase 2 is silent, so only the macro term (eq. 4) from the locked phrase 1 decides
    tune = melody_from_steps([(60, 4)], key=Key(0, "major"))
    analysis = MelodyAnalysis(Key(0, "major"), 1.0, Meter(4, 4), 0, 0,
                              (Phrase("A", 0, 2), Phrase("B", 2, 2)), "user", "user")
    options = HarmonizeOptions(variant="paper", alpha=0.5)
    out = edits.regenerate(tune, options, {0: _lock(locked_root, 0)}, analysis,
                           _macro_library())
    assert out.phrases[0].chosen.chords == _lock(locked_root, 0).chords
    assert out.phrases[1].chosen.chords[0].chord.root_pc == expected_first


def test_a_lock_that_no_longer_fits_its_phrase_is_refused(melody, song):
    with pytest.raises(BadInputError, match="phrase 2's locked chords"):
        edits.regenerate(melody, HarmonizeOptions(phrases="A4" * 8), {1: song.phrases[1].chosen})
    with pytest.raises(BadInputError, match="4 phrases"):
        edits.regenerate(melody, HarmonizeOptions(), {9: song.phrases[0].chosen})


def test_choose_alternative_plays_exactly_that_alternative(song):
    alt = song.phrases[1].alternatives[2]
    out = edits.choose_alternative(song, 1, 2)
    assert out.phrases[1].chosen.chords == alt.chords
    assert out.score == alt.path_score
    # the previous choice joins the alternatives, which stay best first
    assert song.phrases[1].chosen.chords in [a.chords for a in out.phrases[1].alternatives]
    totals = [a.path_score for a in out.phrases[1].alternatives]
    assert totals == sorted(totals, reverse=True)
    assert alt not in out.phrases[1].alternatives
    for i in (0, 2, 3):
        assert out.phrases[i] == song.phrases[i]
    # the Chords track was re-voiced: every note in the phrase belongs to the chord over it
    lo, hi = _ticks(out, 1)
    per = out.melody.ticks_per_16th
    inside = [n for n in out.chord_notes if lo <= n.start_tick < hi]
    assert inside
    for note in inside:
        at = [ev for ev in alt.chords if ev.start_16th * per <= note.start_tick < ev.end_16th * per]
        assert note.pitch % 12 in chord_pitch_classes(at[0].chord.root_pc, at[0].chord.quality)
    with pytest.raises(BadInputError, match="alternatives"):
        edits.choose_alternative(song, 1, 99)


def test_regenerate_phrase_changes_only_that_phrase(song):
    out = edits.regenerate_phrase(song, 2, HarmonizeOptions())
    before = [ev.chord for ev in song.phrases[2].chosen.chords]
    assert [ev.chord for ev in out.phrases[2].chosen.chords] != before
    lo, hi = _span(song, 2)
    assert all(lo <= ev.start_16th and ev.end_16th <= hi for ev in out.phrases[2].chosen.chords)
    for i in (0, 1, 3):
        assert out.phrases[i] is song.phrases[i]
    # the Chords track before the phrase is untouched
    start = _ticks(song, 2)[0]
    assert ([n for n in out.chord_notes if n.start_tick < start]
            == [n for n in song.chord_notes if n.start_tick < start])
    assert song.phrases[2].chosen.chords in [a.chords for a in out.phrases[2].alternatives]


def test_regenerate_phrase_seeds_pick_among_the_near_best(song):
    picks = {
        tuple(ev.chord for ev in edits.regenerate_phrase(
            song, 0, HarmonizeOptions(seed=s)).phrases[0].chosen.chords)
        for s in range(1, 9)
    }
    current = tuple(ev.chord for ev in song.phrases[0].chosen.chords)
    assert current not in picks
    assert len(picks) >= 2


def test_regenerate_phrase_without_any_other_candidate_keeps_the_song():
    only = library([template(2, [(TONIC, "maj", 16)], count=3)])
    tune = melody_from_steps([(60, 16), (64, 16)], key=Key(0, "major"))
    options = HarmonizeOptions(key=Key(0, "major"), phrases="A2", pickup_16th=0, top_k=3)
    h = harmonize(tune, options, only)
    assert edits.regenerate_phrase(h, 0, options, only) == h


def test_voicing_register_and_bass_reach_the_chords_track(melody):
    notes = {
        reg: harmonize(melody, HarmonizeOptions(voicing=Voicing(register=reg))).chord_notes
        for reg in ("low", "middle", "high")
    }

    def upper(ns):  # each strike: the bass is the lowest note of those starting together
        by_start = {}
        for n in ns:
            by_start.setdefault(n.start_tick, []).append(n)
        return [n for group in by_start.values() for n in sorted(group, key=lambda n: n.pitch)[1:]]

    def mean(ns):
        return sum(n.pitch for n in ns) / len(ns)

    low, middle, high = (upper(notes[r]) for r in ("low", "middle", "high"))
    assert mean(low) < mean(middle) - 2 and mean(high) > mean(middle) + 2
    no_bass = harmonize(melody, HarmonizeOptions(voicing=Voicing(bass=False)))
    assert no_bass.voicing == Voicing(bass=False)
    assert sorted(no_bass.chord_notes, key=repr) == sorted(middle, key=repr)
    # an edit re-voices the way the harmonization was voiced
    edited = edits.choose_alternative(no_bass, 0, 0)
    with_bass = edits.choose_alternative(harmonize(melody), 0, 0)
    assert edited.chords == with_bass.chords
    assert sorted(edited.chord_notes, key=repr) == sorted(upper(with_bass.chord_notes), key=repr)


def test_arrange_harmonization_is_the_pipeline_arrangement(melody, song):
    options = ArrangeOptions()
    assert edits.arrange_harmonization(song, options) == arrange(melody, options)


def _piano_in(arrangement, i):
    lo, hi = _ticks(arrangement.harmonization, i)
    return [n for n in arrangement.piano_notes if lo <= n.start_tick < hi]


def test_locked_textures_keep_their_piano_notes(song):
    before = edits.arrange_harmonization(song, ArrangeOptions())
    changed = edits.regenerate_phrase(song, 1, HarmonizeOptions())
    busier = ArrangeOptions(density=4, polyphony=4)
    locked = {0: before.textures[0], 2: before.textures[2]}
    after = edits.arrange_harmonization(changed, busier, locked)
    assert after.textures[0] == before.textures[0] and after.textures[2] == before.textures[2]
    assert _piano_in(after, 0) == _piano_in(before, 0)
    assert _piano_in(after, 2) == _piano_in(before, 2)
    # the free phrases follow the busier request; unlocked, phrases 1 and 3 would too
    assert [after.textures[i].density_level for i in (1, 3)] == [4, 4]
    free = edits.arrange_harmonization(changed, busier)
    assert [t.density_level for t in free.textures] == [4, 4, 4, 4]


def test_rearrange_phrase_changes_that_texture_only(song):
    before = edits.arrange_harmonization(song, ArrangeOptions())
    after = edits.rearrange_phrase(before, 1, ArrangeOptions())
    assert after.textures[1].name != before.textures[1].name
    assert _piano_in(after, 1) != _piano_in(before, 1)
    for i in (0, 2, 3):
        assert after.textures[i] == before.textures[i]
        assert _piano_in(after, i) == _piano_in(before, i)


def test_a_texture_lock_from_another_library_is_refused(song):
    before = edits.arrange_harmonization(song, ArrangeOptions())
    donor = replace(before.textures[0], library="pop909", name="001:0")
    with pytest.raises(BadInputError, match="pop909 library"):
        edits.arrange_harmonization(song, ArrangeOptions(library="default"), {0: donor})
    unknown = replace(before.textures[0], name="no_such_texture")
    with pytest.raises(BadInputError, match="no_such_texture"):
        edits.arrange_harmonization(song, ArrangeOptions(), {0: unknown})


@pytest.fixture(scope="module")
def donor_dir(tmp_path_factory):
    from engine.build.pop909_import import import_pop909
    from engine.library.datasets import shared_data_dir

    data = shared_data_dir()
    if data is None:
        pytest.skip("POP909 is not available (../shared/data or $ACCOBRIDGE_SHARED_DATA)")
    folder = tmp_path_factory.mktemp("donors")
    import_pop909(data / "pop909", out_path=folder / "pop909_donors.npz", limit=20)
    return folder


def test_donor_textures_stay_locked_and_rearrange(song, donor_dir, monkeypatch):
    monkeypatch.setenv("ACCOBRIDGE_DATA_DIR", str(donor_dir))
    before = edits.arrange_harmonization(song, ArrangeOptions())
    assert {t.library for t in before.textures} == {"pop909"}
    changed = edits.regenerate_phrase(song, 3, HarmonizeOptions())
    locked = {i: before.textures[i] for i in (0, 1, 2)}
    after = edits.arrange_harmonization(changed, ArrangeOptions(density=0), locked)
    for i in (0, 1, 2):
        assert after.textures[i] == before.textures[i]
        assert _piano_in(after, i) == _piano_in(before, i)
    moved = edits.rearrange_phrase(before, 2, ArrangeOptions())
    assert moved.textures[2].name != before.textures[2].name
    for i in (0, 1, 3):
        assert moved.textures[i] == before.textures[i]
        assert _piano_in(moved, i) == _piano_in(before, i)


# ---- one chord and one texture changed by hand (engine.chord_edit, texture choice) ----------


def test_every_printed_chord_symbol_reads_back_to_its_chord():
    from engine.chord_edit import parse_chord_symbol
    from engine.types import QUALITY_SUFFIX

    for quality in QUALITY_SUFFIX:
        for root in range(12):
            for bass in (root, (root + 4) % 12):
                chord = Chord(root, quality, bass)
                for key in (None, Key(3, "major"), Key(4, "minor")):
                    assert parse_chord_symbol(chord.symbol(key)) == chord


@pytest.mark.parametrize(("symbol", "chord"), [
    ("C", Chord(0, "maj", 0)), ("  f#m7 ", Chord(6, "min7", 6)), ("Bb/D", Chord(10, "maj", 2)),
    ("EbM7", Chord(3, "maj7", 3)), ("D-7", Chord(2, "min7", 2)), ("Bø", Chord(11, "hdim7", 11)),
    ("G7sus", Chord(7, "7sus4", 7)), ("Asus", Chord(9, "sus4", 9)), ("C°7", Chord(0, "dim7", 0)),
    ("Cm(maj7)", Chord(0, "minmaj7", 0)), ("A♭add9", Chord(8, "add9", 8)),
])
def test_chord_symbols_as_lead_sheets_write_them(symbol, chord):
    from engine.chord_edit import parse_chord_symbol

    assert parse_chord_symbol(symbol) == chord


@pytest.mark.parametrize(("symbol", "says"), [
    ("", "not a chord symbol"), ("H7", "not a chord symbol"), ("Cxyz", "unknown chord quality"),
    ("C/", "not a chord symbol"), ("Cm7/Q", "not a chord symbol"), ("7", "not a chord symbol"),
])
def test_a_bad_chord_symbol_says_what_is_wrong(symbol, says):
    from engine.chord_edit import parse_chord_symbol

    with pytest.raises(BadInputError, match=says) as info:
        parse_chord_symbol(symbol)
    assert "e.g. C, F#m7" in str(info.value)


RULES = HarmonizeOptions(scorer="rules")


def test_suggestions_rank_the_chords_that_fit_the_span_best(melody):
    from engine.chord_edit import suggest_chords
    from engine.harmonizer.colour import MelodyPitchClasses
    from engine.pipeline import _melody_pitch

    song = harmonize(melody, RULES)
    key = song.analysis.key
    pitch = _melody_pitch(melody, song.analysis)
    for i, phrase in enumerate(song.phrases):
        for e, event in enumerate(phrase.chosen.chords):
            found = suggest_chords(song, i, e, RULES)
            assert 1 <= len(found) <= 8
            assert len({s.chord for s in found}) == len(found)
            scores = [s.score for s in found]
            assert scores == sorted(scores, reverse=True)
            # the best one holds the pitch class the melody sings longest over the span
            heard = MelodyPitchClasses(pitch, 0).histogram(event.start_16th, event.end_16th)
            if heard.any():
                top = found[0].chord
                assert int(heard.argmax()) in chord_pitch_classes(top.root_pc, top.quality), (
                    i, e, top.symbol(key))


def test_suggestions_with_the_learned_scorer_prefer_what_the_search_chose(song):
    from engine.chord_edit import suggest_chords

    firsts = [suggest_chords(song, i, e, HarmonizeOptions())[:3]
              for i, ph in enumerate(song.phrases) for e in range(len(ph.chosen.chords))]
    chosen = [ev.chord.root_pc for ph in song.phrases for ev in ph.chosen.chords]
    hits = sum(root in {s.chord.root_pc for s in top}
               for root, top in zip(chosen, firsts, strict=True))
    assert hits >= 0.8 * len(chosen)


def _passing_or_chord_tone(note, tones, per_16th):
    """A chord tone, or a note of an 8th or less a step from one (passing, neighbour)."""
    pc = note.pitch % 12
    near = any(min((pc - t) % 12, (t - pc) % 12) <= 2 for t in tones)
    return pc in tones or (note.duration_tick <= 2 * per_16th and near)


@pytest.mark.parametrize("symbol", ["Am", "Dm7", "Eb", "Gm/Bb", "C7sus4"])
def test_a_replaced_chord_re_arranges_only_its_phrase_around_it(song, symbol):
    from engine.chord_edit import parse_chord_symbol, replace_chord

    before = edits.arrange_harmonization(song, ArrangeOptions())
    new = parse_chord_symbol(symbol)
    i, e = 1, 2
    event = song.phrases[i].chosen.chords[e]
    edited = replace_chord(song, i, e, new, HarmonizeOptions())
    events = edited.phrases[i].chosen.chords
    assert events[e] == replace(event, chord=new)
    assert events[:e] + events[e + 1:] == (song.phrases[i].chosen.chords[:e]
                                           + song.phrases[i].chosen.chords[e + 1:])
    for j in (0, 2, 3):
        assert edited.phrases[j] == song.phrases[j]
    # the progression before the edit is one click away among the alternatives
    assert song.phrases[i].chosen.chords in [a.chords for a in edited.phrases[i].alternatives]
    after = edits.arrange_harmonization(edited, ArrangeOptions(), dict(enumerate(before.textures)))
    assert after.textures == before.textures
    per = song.melody.ticks_per_16th
    tones = chord_pitch_classes(new.root_pc, new.quality) | {new.bass_pc}
    inside = [n for n in after.piano_notes
              if event.start_16th * per <= n.start_tick < event.end_16th * per]
    assert inside and all(_passing_or_chord_tone(n, tones, per) for n in inside)
    assert inside != [n for n in before.piano_notes
                      if event.start_16th * per <= n.start_tick < event.end_16th * per]
    for j in (0, 2, 3):
        assert _piano_in(after, j) == _piano_in(before, j)


def test_a_replaced_chord_kept_as_a_lock_survives_a_later_generation(melody, song):
    from engine.chord_edit import parse_chord_symbol, replace_chord

    edited = replace_chord(song, 0, 1, parse_chord_symbol("Dm7"), HarmonizeOptions())
    again = edits.regenerate(melody, HarmonizeOptions(style="rnb", seed=5),
                             {0: edited.phrases[0].chosen})
    assert again.phrases[0].chosen.chords == edited.phrases[0].chosen.chords
    assert again.phrases[0].chosen.chords[1].chord == Chord(2, "min7", 2)


def test_replace_chord_refuses_an_index_outside_the_phrase(song):
    from engine.chord_edit import replace_chord, suggest_chords

    n = len(song.phrases[0].chosen.chords)
    with pytest.raises(BadInputError, match=f"phrase 1 has {n} chords, not {n + 1}"):
        replace_chord(song, 0, n, Chord(0, "maj", 0), HarmonizeOptions())
    with pytest.raises(BadInputError, match="there is no phrase 9"):
        suggest_chords(song, 8, 0, HarmonizeOptions())


def test_texture_candidates_are_ranked_and_choosing_one_re_renders_that_phrase(song):
    before = edits.arrange_harmonization(song, ArrangeOptions())
    listed = edits.texture_candidates(before, 2, ArrangeOptions())
    names = [t.name for t in listed]
    assert len(names) == len(set(names)) >= 2 and before.textures[2].name in names
    assert all(t.library == before.textures[2].library for t in listed)
    other = next(t for t in listed if t.name != before.textures[2].name)
    after = edits.choose_texture(before, 2, other, ArrangeOptions())
    assert after.textures[2].name == other.name
    assert _piano_in(after, 2) != _piano_in(before, 2)
    for i in (0, 1, 3):
        assert after.textures[i] == before.textures[i]
        assert _piano_in(after, i) == _piano_in(before, i)
    # the texture it plays now, chosen again, is the same arrangement
    same = next(t for t in listed if t.name == before.textures[2].name)
    assert edits.choose_texture(before, 2, same, ArrangeOptions()).piano_notes == \
        before.piano_notes
