"""The panel's presenters on their own: a fake view and store stand in for the window, so each
job (presets, settings, requests, DAW send, files) is checked without building the window."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bridge.types import Clip, ClipNote
from engine.types import ArrangeOptions
from ui.panel.document import AnalysisEdits, PanelDocument
from ui.panel.jobs import PANEL_SOURCE
from ui.panel.presenters.daw import DawPresenter
from ui.panel.presenters.files import FilePresenter, melody_file
from ui.panel.presenters.generation import GenerationPresenter
from ui.panel.presenters.presets import PresetPresenter

WAIT_MS = 10_000


@dataclass(frozen=True)
class _Preset:
    name: str
    factory: bool = True
    description: str = ""
    style: str = "pop_standard"
    send_parts: tuple[str, ...] = ("chords",)

    def arrange_options(self, base: ArrangeOptions) -> ArrangeOptions:
        return replace(base, harmonize=replace(base.harmonize, style=self.style))


class _Store:
    """The PresetStore's surface the presenter uses, in memory."""

    def __init__(self, *presets: _Preset) -> None:
        self.items = list(presets)
        self.problems: list[str] = []

    def presets(self) -> list[_Preset]:
        return list(self.items)

    def save_as(self, preset: _Preset, name: str) -> _Preset:
        from ui.presets import PresetError

        if name in [p.name for p in self.items if p.factory]:
            raise PresetError(f"a preset named {name!r} exists")
        saved = replace(preset, name=name, factory=False)
        self.items = [saved if p.name == name else p for p in self.items]
        if saved not in self.items:
            self.items.append(saved)
        return saved

    def rename(self, name: str, new_name: str) -> _Preset:
        old = next(p for p in self.items if p.name == name)
        renamed = replace(old, name=new_name)
        self.items = [renamed if p is old else p for p in self.items]
        return renamed

    def delete(self, name: str) -> None:
        self.items = [p for p in self.items if p.name != name]


class _View:
    """Every presenter's view, recording what it was told."""

    def __init__(self) -> None:
        self.statuses: list[str] = []
        self.errors: list[str] = []
        self.listed: list[tuple[list[str], int]] = []
        self.deletable: bool | None = None
        self.modified: bool | None = None
        self.asked: tuple[str, str] | None = None
        self.name_answer: str | None = None
        self.confirm_answer = True
        self.edits = AnalysisEdits()
        self.is_live = True
        self.shown: list[str] = []
        self.saved: list[Path] = []

    def show_status(self, text: str) -> None:
        self.statuses.append(text)

    def report_error(self, message: str, err: BaseException | None, details: str = "") -> None:
        self.errors.append(message if err is None else f"{message}: {err}")

    def show_presets(self, presets: Any, index: int) -> None:
        self.listed.append(([p.name for p in presets], index))

    def show_preset(self, preset: Any, index: int, modified: bool) -> None:
        self.deletable = not preset.factory
        self.modified = modified

    def ask_preset_name(self, title: str, default: str = "") -> str | None:
        self.asked = (title, default)
        return self.name_answer

    def confirm_delete(self, name: str) -> bool:
        return self.confirm_answer

    def analysis_edits(self) -> AnalysisEdits:
        return self.edits

    def start_progress(self) -> None:
        self.shown.append("progress")

    def set_progress(self, fraction: float) -> None:
        pass

    def end_progress(self) -> None:
        self.shown.append("progress over")

    def show_result(self, outcome: Any) -> None:
        self.shown.append("result")

    def show_locks(self) -> None:
        self.shown.append("locks")

    def live(self) -> bool:
        return self.is_live

    def show_clip(self, placeholder: str = "Generating…") -> None:
        self.shown.append(f"clip: {placeholder}")

    def file_saved(self, path: Path) -> None:
        self.saved.append(path)


class _Link:
    """The EngineLink's request surface: records what was submitted or sent."""

    def __init__(self, daw_sent: bool = True) -> None:
        self.submitted: list[Any] = []
        self.sent: list[tuple[str, Any]] = []
        self.daw_sent = daw_sent

    def submit(self, clip: Clip, request: Any) -> str:
        self.submitted.append((clip, request))
        return f"panel-{len(self.submitted)}"

    def send_to_daw(self, source: str, request: Any) -> bool:
        self.sent.append((source, request))
        return self.daw_sent


def _presets(view: _View, *presets: _Preset) -> tuple[PresetPresenter, list[Any]]:
    chosen: list[Any] = []
    presenter = PresetPresenter(_Store(*presets), view, view, lambda: None, chosen.append)
    presenter.load(None)
    return presenter, chosen


def _clip(source: str = PANEL_SOURCE) -> Clip:
    return Clip(source, "tune", 8.0, 120.0, 4, 4,
                tuple(ClipNote(60 + i % 5, float(i), 1.0, 90, 1) for i in range(8)))


# ---- presets -------------------------------------------------------------------------------


def test_presets_list_choose_save_and_delete():
    view = _View()
    presets, chosen = _presets(view, _Preset("Pop"), _Preset("Dark", style="dark"))
    assert view.listed[-1] == (["Pop", "Dark"], 0) and view.deletable is False
    presets.choose(1)
    assert chosen == [presets.current] and presets.current.name == "Dark"
    assert presets.arrange_options().harmonize.style == "dark"
    view.name_answer = None  # the user cancels the name dialog: nothing saved
    presets.save_as()
    assert [p.name for p in presets.store.items] == ["Pop", "Dark"]
    view.name_answer = "Mine"
    presets.save_as()
    assert view.listed[-1] == (["Pop", "Dark", "Mine"], 2) and view.deletable is True
    presets.save_as("Pop")  # the store refuses: the error is reported, nothing else changes
    assert view.errors == ["Could not save the preset “Pop”: a preset named 'Pop' exists"]
    view.confirm_answer = False
    presets.delete()
    assert presets.current.name == "Mine"
    view.confirm_answer = True
    presets.delete()
    assert view.listed[-1] == (["Pop", "Dark"], 0) and chosen[-1].name == "Pop"


def test_edits_to_a_factory_preset_are_kept_until_saved_as_a_new_one():
    view = _View()
    presets, chosen = _presets(view, _Preset("Pop"), _Preset("Dark", style="dark"))
    presets.edit(style="rnb")
    assert presets.modified and view.modified and presets.current.style == "rnb"
    assert presets.stored.style == "pop_standard"  # the factory preset itself is untouched
    assert chosen[-1].style == "rnb"  # the window generates with the edit at once
    assert presets.arrange_options().harmonize.style == "rnb"
    presets.edit(style="pop_standard")  # back to the stored values: nothing to save
    assert not presets.modified
    presets.edit(style="rnb")
    view.name_answer = None
    presets.save()  # a factory preset's Save is Save as…: the name is asked for
    assert view.asked == ("Save preset as", "Pop (mine)") and presets.modified
    view.name_answer = "Pop R&B"
    presets.save()
    assert presets.current.name == "Pop R&B" and not presets.current.factory
    assert presets.current.style == "rnb" and not presets.modified
    assert [p.name for p in presets.store.items] == ["Pop", "Dark", "Pop R&B"]


def test_a_user_preset_is_saved_in_place_and_renamed():
    view = _View()
    presets, _ = _presets(view, _Preset("Pop"), _Preset("Mine", factory=False))
    presets.choose(1)
    presets.edit(style="dark")
    presets.save()
    assert [(p.name, p.style) for p in presets.store.items] == [
        ("Pop", "pop_standard"), ("Mine", "dark")]
    presets.edit(style="rnb")
    view.name_answer = "Ours"
    presets.rename()  # the edit stays an edit: renaming saves nothing else
    assert [(p.name, p.style) for p in presets.store.items] == [
        ("Pop", "pop_standard"), ("Ours", "dark")]
    assert presets.current.name == "Ours" and presets.current.style == "rnb"
    assert presets.modified
    presets.choose(0)
    presets.rename("Nope")  # factory presets keep their names
    assert presets.store.items[0].name == "Pop"


def test_a_preset_that_is_gone_falls_back_to_the_first():
    view = _View()
    presets, _ = _presets(view, _Preset("Pop"), _Preset("Dark"))
    presets.load("Dark")
    assert presets.current.name == "Dark"
    presets.load("deleted meanwhile")
    assert presets.current.name == "Pop"
    assert presets.send_parts() == ("chords",)


# ---- requests to the engine ----------------------------------------------------------------


def _generation(view: _View, link: _Link) -> GenerationPresenter:
    presets, _ = _presets(view, _Preset("Pop", style="rnb", send_parts=("piano",)))
    return GenerationPresenter(link, PanelDocument(), presets, view)


def test_generate_carries_the_edits_and_only_the_latest_request_counts():
    view, link = _View(), _Link()
    generation = _generation(view, link)
    generation.generate()
    assert link.submitted == []  # no clip yet
    generation.document.open(PANEL_SOURCE, _clip(), None)
    generation.document.phrase_styles[1] = "dark"
    view.edits = AnalysisEdits(key="D minor", meter=(3, 4), pickup_16th=2)
    generation.generate()
    generation.generate()
    (_, first), (clip, second) = link.submitted
    harmonize = second.options.harmonize
    assert (second.action, second.parts, harmonize.style) == ("generate", ("piano",), "rnb")
    assert (harmonize.key.name, harmonize.pickup_16th, harmonize.phrase_styles) == \
        ("D minor", 2, (None, "dark"))
    assert second.melody.meter.name == "3/4" and clip.source == PANEL_SOURCE
    assert generation.latest_request == "panel-2"
    generation.on_failed(PANEL_SOURCE, "panel-1", 3, "superseded news")
    assert view.errors == []
    generation.on_failed(PANEL_SOURCE, "panel-2", 3, "no notes")
    assert view.errors == ["Could not generate: no notes"]


def test_a_bad_key_from_the_editor_is_reported_not_raised():
    view, link = _View(), _Link()
    generation = _generation(view, link)
    generation.document.open(PANEL_SOURCE, _clip(), None)
    view.edits = AnalysisEdits(key="H minor")
    generation.generate()
    assert link.submitted == [] and len(view.errors) == 1


# ---- DAW send ------------------------------------------------------------------------------


def _daw(view: _View, link: _Link) -> DawPresenter:
    generation = _generation(view, link)
    return DawPresenter(link, generation.document, generation, view)


def test_send_answers_only_a_daw_that_sent_the_clip():
    view, link = _View(), _Link(daw_sent=False)
    daw = _daw(view, link)
    daw.send()
    assert link.sent == [] and view.errors == []  # nothing shown yet: nothing to send
    daw.document.open(PANEL_SOURCE, _clip(), None)
    # only passed through: a stand-in with no phrases
    daw.document.arrangement = SimpleNamespace(
        harmonization=SimpleNamespace(phrases=()))
    daw.send()
    assert link.sent == [] and "opened from a file" in view.errors[-1]
    clip = _clip("reaper")
    daw.document.source, daw.document.clip = "reaper", clip
    daw.send()
    (source, request), = link.sent
    assert (source, request.action, request.clip_notes) == ("reaper", "replay", clip.notes)
    assert view.errors[-1] == "reaper has not sent a clip since the panel started"
    link.daw_sent = True
    daw.send()
    assert view.statuses[-1] == "Sending to reaper…"


def test_with_live_mode_off_a_daw_clip_is_opened_and_waits():
    view, link = _View(), _Link()
    daw = _daw(view, link)
    view.is_live = False
    daw.clip_arrived("ableton", _clip("ableton"))
    assert daw.document.source == "ableton" and daw.document.clip is not None
    assert view.shown == ["clip: Live mode is off: press Generate, then Send to DAW."]
    assert link.submitted == []


# ---- files -----------------------------------------------------------------------------------


def test_only_melody_files_are_taken_from_a_drop():
    assert melody_file(["/a/notes.txt", "/a/Tune.MID", "/a/b.xml"]) == Path("/a/Tune.MID")
    assert melody_file(["/a/notes.txt"]) is None


def test_saving_before_any_result_is_an_error_and_a_save_is_reported_when_written(qtbot, tmp_path):
    from ui.panel.background import Background
    from ui.panel.presenters.settings import SettingsPresenter
    from ui.settings import Settings

    view, link = _View(), _Link()
    generation = _generation(view, link)
    background = Background()
    prefs = SettingsPresenter(Settings(), tmp_path / "settings.json", background.run, lambda: None)
    files = FilePresenter(generation.document, link, prefs, generation,
                          background.run, view)
    try:
        assert files.drag_file() is None and view.errors[-1].startswith("Nothing to drag yet")
        with pytest.raises(ValueError, match="nothing to save"):
            files.write_midi(tmp_path / "x.mid")
        files.load_clip(_clip("osc:test"), generate=True)
        assert files.document.source == PANEL_SOURCE and len(link.submitted) == 1
        from ui.panel.jobs import clip_melody

        files.document.restored = _restored()
        files.document.melody = clip_melody(files.document.clip)
        target = tmp_path / "out" / "song.mid"
        target.parent.mkdir()
        files.save_midi(target)
        qtbot.waitUntil(lambda: view.saved == [target], timeout=WAIT_MS)
        assert prefs.settings.last_export_dir == str(target.parent)
        assert files.drag_file() is not None
    finally:
        files.close()
        background.close()


def _restored() -> Any:
    from bridge.types import GenerateResult

    return GenerateResult("r1", "osc:test", {"chords": (ClipNote(53, 0.0, 4.0, 90, 2),),
                                             "piano": ()})


# ---- settings ------------------------------------------------------------------------------


def test_settings_writes_are_off_the_gui_thread_and_the_newest_wins(qtbot, tmp_path):
    from ui.panel.background import Background
    from ui.panel.presenters.settings import SettingsPresenter
    from ui.settings import Settings, load_settings

    background = Background()
    writes: list[int] = []
    path = tmp_path / "settings.json"
    prefs = SettingsPresenter(Settings(), path, background.run, lambda: writes.append(1))
    try:
        for ms in (200, 250, 300):
            prefs.save(debounce_ms=ms)
        prefs.save(debounce_ms=-5)  # out of range: logged, the settings stay as they were
        assert prefs.settings.debounce_ms == 300
        # the I/O thread runs calls in order: once this one is back, every write is done
        finished: list[object] = []
        background.run(lambda: None, finished.append, finished.append)
        qtbot.waitUntil(lambda: bool(finished), timeout=WAIT_MS)
        assert 1 <= len(writes) <= 3  # a snapshot overtaken before its turn is not written
        assert load_settings(path)[0].debounce_ms == 300
        prefs.save(wait=True, theme="light")  # closing: written at once, on this thread
        assert load_settings(path)[0].theme == "light"
    finally:
        background.close()
