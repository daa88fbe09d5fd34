"""``pyro-vrnn sample``: generate, reconstruct or continue sequences from a run."""

from __future__ import annotations

from ..models.predictive import MAX_TEMPERATURE
from ..report.sampling import prime_run, reconstruct_run, sample_run
from . import common

DESCRIPTION = """\
Generate sequences x ~ p(x) from a run's best-on-validation checkpoint (--checkpoint last: the
latest), un-normalized to data units, and write samples.png (generated beside real test
sequences: waveforms, pen strokes with pen-up gaps, or piano rolls), samples.pt, for speech
sample_I.wav / real_I.wav (16-bit PCM), and for music sample_I.mid / real_I.mid (MIDI on the grid
the run's data were read on, steps_per_beat, 4 by default; --tempo BPM sets the playback speed) and
sample_I.wav / real_I.wav (the same notes played by a small additive synthesizer, 16 kHz).

--reconstruct instead draws the first N test sequences beside the model's reconstructions of them
(z from the guide, each step drawn given the true past: teacher forcing): reconstruction.png,
reconstruction.pt (+ data_I.wav / reconstruction_I.wav for speech, .mid and .wav for music).
--prime continues a prefix N times: the prefix's latents come from the guide, the --length T steps
after it from the prior. The prefix is a test-sequence index or a file (.npy / .pt of shape
(steps, x_dim) in data units, an audio file for speech, a MIDI file for music): primed.png (prefix
black, continuation red), primed.pt (+ primed_I.wav for speech, primed_I.mid and .wav for music).

examples:
  pyro-vrnn sample runs/vrnn-gmm --num 4 --length 80 --out runs/vrnn-gmm/samples
  pyro-vrnn sample runs/vrnn-gmm --reconstruct --num 3 --out runs/vrnn-gmm/reconstruction
  pyro-vrnn sample runs/vrnn-gmm --prime 0 --prime-steps 40 --length 40 --out runs/vrnn-gmm/primed
  pyro-vrnn sample runs/midi --prime theme.mid --length 64 --tempo 100 --out runs/midi/continued
"""


def add_parser(subparsers) -> None:
    """Add ``pyro-vrnn sample`` to ``subparsers``."""
    p = subparsers.add_parser("sample", help="generate sequences from a run: PNG figure (+ WAV for speech, MIDI and WAV for music)",
                       description=DESCRIPTION, formatter_class=common.Formatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--num", type=common.positive_int, default=4, metavar="N",
                   help="sequences to generate (with --reconstruct: test sequences; with --prime: continuations)")
    p.add_argument("--length", type=common.positive_int, default=None, metavar="T",
                   help="time steps per sequence [default: median training length]; with --prime, steps after the "
                        "prefix [default: the prefix's length]; with --reconstruct, steps of each test sequence "
                        "[default: all]")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for samples.png, samples.pt, *.wav")
    p.add_argument("--no-real", action="store_true", help="do not load the data to show real sequences beside")
    common.add_checkpoint_arg(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--reconstruct", action="store_true",
                      help="plot test sequences beside their reconstructions (guide's z, teacher forcing)")
    mode.add_argument("--prime", metavar="FILE_OR_INDEX",
                      help="continue this prefix: an index into the test split, or a .npy/.pt/audio/MIDI file")
    p.add_argument("--prime-steps", type=common.positive_int, default=None, metavar="P",
                   help="with --prime: use only the prefix's first P steps [default: all]")
    p.add_argument("--temperature", type=common.temperature,
                   default=1.0, metavar="TAU", help="scale of the sampling noise (0: the means; at most "
                   f"{MAX_TEMPERATURE:g}; not with --reconstruct) [default: 1]")
    p.add_argument("--tempo", type=common.checked(float, lambda v: 0 < v < float("inf"), "a positive number"),
                   default=None, metavar="BPM", help="music: beats a minute of the MIDI files written (the grid "
                   "stays the run's steps_per_beat) [default: 120]")
    common.add_runtime_args(p, seed_help="seed of the samples [default: 0]")
    p.set_defaults(func=run)


def run(args) -> int:
    device = common.setup_runtime(args)
    seed = args.seed if args.seed is not None else 0
    if args.prime_steps is not None and args.prime is None:
        raise ValueError("--prime-steps applies only with --prime")
    if args.reconstruct and args.temperature != 1.0:
        raise ValueError("--temperature does not apply to --reconstruct (reconstructions are drawn at temperature 1)")
    if args.reconstruct:
        written = reconstruct_run(args.run_dir, args.out, num=args.num, length=args.length, seed=seed, device=device,
                                  checkpoint=args.checkpoint, tempo_bpm=args.tempo)
    elif args.prime is not None:
        written = prime_run(args.run_dir, args.out, args.prime, num=args.num, length=args.length, seed=seed,
                            prime_steps=args.prime_steps, temperature=args.temperature, device=device,
                            checkpoint=args.checkpoint, tempo_bpm=args.tempo)
        print(f"prefix of {written.pop('prefix_steps')} steps, continued {args.num} times")
    else:
        written = sample_run(args.run_dir, args.out, num=args.num, length=args.length, seed=seed, device=device,
                             with_real=not args.no_real, temperature=args.temperature,
                             checkpoint=args.checkpoint, tempo_bpm=args.tempo)
    for key, value in written.items():
        for path in (value if isinstance(value, list) else [value]):
            print(f"written {path}")
    return 0
