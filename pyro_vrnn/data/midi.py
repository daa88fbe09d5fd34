"""Standard MIDI files <-> notes on a regular time grid (read and written with ``mido``).

Reading puts every note of a file on a grid of steps and returns it as ``(pitch, first, end)``: the
note sounds at steps ``first .. end - 1``. Step ``k`` starts at

- ``k * ticks_per_beat / steps_per_beat`` ticks (``steps_per_beat=N``: a metrical grid, the same
  whatever the tempo), or
- ``k / frames_per_second`` seconds (``frames_per_second=F``: for unmetered recordings; the file's
  tempo map turns ticks into seconds),

and a note sounding from ``s`` to ``e`` (a ``note_on``, and the next ``note_off`` or ``note_on``
with velocity 0 of its track, channel and pitch) sounds at step ``k`` exactly when
``s <= start(k) < e``: ``first = ceil(s / step)``, ``end = ceil(e / step)``, computed in whole
numbers or exact fractions, so nothing is lost to rounding. A second ``note_on`` of a pitch already
sounding does not restart it; a note still sounding when its track ends lasts to the end of the
file. The file lasts ``ceil(last event / step)`` steps (its last ``end_of_track``), so silence at
the end survives a round trip. Channel 10 (mido's channel 9) is General MIDI percussion, not
pitch: its notes are left out, and the other tracks and channels are merged.

Writing is the inverse on the same grid: each run of consecutive sounding steps of a pitch becomes
one note, in a one-track (type 0) file whose ticks per beat are a multiple of ``steps_per_beat``.
Files are opened through :mod:`pyro_vrnn.data.files` (a regular file of at most ``max_bytes``,
``MAX_FILE_BYTES["midi"]`` by default) and written to a temporary file that is then renamed.
"""

import bisect
import math
import os
from fractions import Fraction

import mido

from . import options
from .errors import DataError
from .files import open_input, written_atomically

#: mido's channel of General MIDI percussion (channel 10 counted from 1)
DRUM_CHANNEL = 9
#: file name endings read as MIDI (matched case-insensitively)
MIDI_EXTENSIONS = (".mid", ".midi")
#: ticks per beat a written file aims at (rounded up to a multiple of ``steps_per_beat``)
WRITE_TICKS_PER_BEAT = 480
_DEFAULT_TEMPO = 500000  # microseconds per beat (120 bpm) until the first set_tempo, as the standard says
_MAX_TICKS_PER_BEAT = 0x7FFF  # a 15-bit field; a set top bit means SMPTE timing instead


def grid_options(steps_per_beat=None, frames_per_second=None):
    """The checked grid: ``("steps_per_beat", N)`` or ``("frames_per_second", F)``; ``N = 4`` (sixteenth
    notes in 4/4) when neither is given. Giving both is a :class:`DataError`."""
    if steps_per_beat is not None and frames_per_second is not None:
        raise DataError(f"give steps_per_beat or frames_per_second, not both (got steps_per_beat={steps_per_beat!r}, "
                        f"frames_per_second={frames_per_second!r})")
    if frames_per_second is not None:
        return "frames_per_second", options.real_number("frames_per_second", frames_per_second, above=0.0)
    return "steps_per_beat", options.whole_number("steps_per_beat", 4 if steps_per_beat is None else steps_per_beat,
                                                  minimum=1, maximum=_MAX_TICKS_PER_BEAT)


def _ceil_div(a, b):
    return -((-a) // b)


class _TempoMap:
    """Ticks -> seconds (as exact fractions) through the file's ``set_tempo`` changes."""

    def __init__(self, changes, ticks_per_beat):
        self.ticks, self.seconds, self.tempi = [0], [Fraction(0)], [_DEFAULT_TEMPO]
        self.ticks_per_beat = ticks_per_beat
        for tick, tempo in sorted(changes, key=lambda change: change[0]):  # stable: a later change at one tick wins
            if tick == self.ticks[-1]:
                self.tempi[-1] = tempo
                continue
            self.seconds.append(self.seconds[-1] + Fraction((tick - self.ticks[-1]) * self.tempi[-1],
                                                            1000000 * ticks_per_beat))
            self.ticks.append(tick)
            self.tempi.append(tempo)

    def __call__(self, tick):
        i = bisect.bisect_right(self.ticks, tick) - 1
        return self.seconds[i] + Fraction((tick - self.ticks[i]) * self.tempi[i], 1000000 * self.ticks_per_beat)


def _parse(path, max_bytes):
    with open_input(path, "midi", max_bytes) as f:
        try:
            return mido.MidiFile(file=f)
        except DataError:
            raise
        except EOFError:
            raise DataError("not a readable MIDI file (it ends in the middle of a chunk: truncated?)", path) from None
        except Exception as exc:  # OSError (no MThd/MTrk), ValueError/KeyError (bad bytes), ...
            raise DataError(f"not a readable MIDI file ({type(exc).__name__}: {exc})", path) from None


def read_midi_notes(path, steps_per_beat=None, frames_per_second=None, max_bytes=None):
    """The notes of a MIDI file on a grid of steps (see the module docstring).

    :param path: a ``.mid``/``.midi`` file (a regular file of at most ``max_bytes``).
    :param int steps_per_beat: steps per beat (quarter note), ``N``; 4 when neither grid option is given.
    :param float frames_per_second: steps per second, ``F``, instead (tempo map applied).
    :returns: ``(num_steps, notes)``: the file's length in steps and a list of ``(pitch, first, end)``
        with ``pitch`` the MIDI note number (0..127) and ``0 <= first < end <= num_steps``; notes that
        sound at no step start (shorter than a step, between two) are not in it. Drums left out.
    :raises DataError: naming the file, when it is unreadable, of type 2, SMPTE-timed, holds no notes,
        only drum notes, or no note sounds at any step start.
    """
    grid, value = grid_options(steps_per_beat, frames_per_second)
    midi = _parse(path, max_bytes)
    if midi.type == 2:
        raise DataError("MIDI type 2 (independent sequential patterns) is not supported; save it as type 0 or 1", path)
    tpb = midi.ticks_per_beat
    if not 0 < tpb <= _MAX_TICKS_PER_BEAT:
        raise DataError(f"time division {tpb} is not a positive number of ticks per beat (SMPTE timing is not "
                        "supported)", path)
    intervals, tempo_changes, end_tick, drums = [], [], 0, 0
    for track in midi.tracks:
        tick, sounding = 0, {}
        for message in track:
            tick += message.time
            if message.type == "set_tempo":
                tempo_changes.append((tick, message.tempo))
            elif message.type in ("note_on", "note_off"):
                if message.channel == DRUM_CHANNEL:
                    drums += message.type == "note_on" and message.velocity > 0
                    continue
                key = (message.channel, message.note)
                if message.type == "note_on" and message.velocity > 0:
                    sounding.setdefault(key, tick)
                elif key in sounding:
                    intervals.append((message.note, sounding.pop(key), tick))
        end_tick = max(end_tick, tick)
        intervals.extend((note, start, None) for (_, note), start in sounding.items())  # closed at the file's end
    if not intervals:
        raise DataError(f"only drum notes (channel 10, {drums} of them), which are left out: nothing to play"
                        if drums else "no notes (an empty MIDI file)", path)
    if grid == "steps_per_beat":  # step k starts at tick k * tpb / N: compare s * N with k * tpb in whole numbers
        def step_at(tick):
            return _ceil_div(tick * value, tpb)
    else:  # step k starts at k / F seconds
        seconds, rate = _TempoMap(tempo_changes, tpb), Fraction(value)

        def step_at(tick):
            return math.ceil(seconds(tick) * rate)
    num_steps = step_at(end_tick)
    notes = []
    for note, start, stop in intervals:
        first, end = step_at(start), num_steps if stop is None else step_at(stop)
        if first < end:
            notes.append((note, first, end))
    if not notes:
        raise DataError(f"no note sounds at the start of a step of this grid ({grid}={value:g}): every note is "
                        f"shorter than a step; use a finer grid", path)
    notes.sort(key=lambda n: (n[1], n[0], n[2]))
    return num_steps, notes


def write_midi_notes(notes, num_steps, path, steps_per_beat=4, tempo_bpm=120.0, velocity=80):
    """Write ``notes`` (``(pitch, first, end)`` on a grid of ``steps_per_beat`` steps a beat) as a
    one-track MIDI file of ``num_steps`` steps at ``tempo_bpm`` beats a minute, on channel 1.

    ``tempo_bpm`` only sets the playback speed (a step lasts ``60 / (tempo_bpm * steps_per_beat)``
    seconds; it is stored in whole microseconds a beat). Reading the file back with the same
    ``steps_per_beat`` (or with ``frames_per_second = tempo_bpm * steps_per_beat / 60``) gives the
    same notes. The file is written to a temporary file beside ``path`` and renamed onto it;
    returns ``path``.
    """
    steps_per_beat = options.whole_number("steps_per_beat", steps_per_beat, minimum=1, maximum=_MAX_TICKS_PER_BEAT)
    tempo_bpm = options.real_number("tempo_bpm", tempo_bpm, above=0.0)
    velocity = options.whole_number("velocity", velocity, minimum=1, maximum=127)
    num_steps = options.whole_number("num_steps", num_steps, minimum=0)
    tempo = round(60e6 / tempo_bpm)
    if not 1 <= tempo <= 0xFFFFFF:
        raise DataError(f"tempo_bpm must be between {60e6 / 0xFFFFFF:.3g} and 6e7 (a MIDI tempo is 1 to 2^24 - 1 "
                        f"microseconds a beat), got {tempo_bpm!r}")
    ticks_per_step = _ceil_div(WRITE_TICKS_PER_BEAT, steps_per_beat)
    events = [(0, 0, mido.MetaMessage("set_tempo", tempo=tempo))]
    for pitch, first, end in notes:
        if not (0 <= pitch <= 127 and 0 <= first < end <= num_steps):
            raise DataError(f"a note must have a pitch 0..127 and steps 0 <= first < end <= num_steps={num_steps}, "
                            f"got (pitch, first, end) = {(pitch, first, end)}")
        events.append((first * ticks_per_step, 2, mido.Message("note_on", note=pitch, velocity=velocity)))
        events.append((end * ticks_per_step, 1, mido.Message("note_off", note=pitch, velocity=0)))
    events.sort(key=lambda event: (event[0], event[1], getattr(event[2], "note", -1)))  # offs before ons at a tick
    track, tick = mido.MidiTrack(), 0
    for at, _, message in events:
        track.append(message.copy(time=at - tick))
        tick = at
    track.append(mido.MetaMessage("end_of_track", time=num_steps * ticks_per_step - tick))
    midi = mido.MidiFile(type=0, ticks_per_beat=ticks_per_step * steps_per_beat, tracks=[track])
    return _save_atomically(midi, path)


def _save_atomically(midi, path):
    """Write ``midi`` under a temporary name beside ``path``, then rename it onto ``path``."""
    path_text = os.fspath(path)
    if os.path.isdir(path_text):
        raise DataError("cannot write a MIDI file: this is a folder", path)
    with written_atomically(path, "the MIDI file") as tmp, open(tmp, "wb") as f:
        midi.save(file=f)
    return path
