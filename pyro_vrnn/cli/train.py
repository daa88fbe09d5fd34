"""``pyro-vrnn train``: train one model into a run folder (or resume it)."""

from __future__ import annotations

from pathlib import Path

from ..data.prepared import sequence_lengths
from ..models.zoo import model_spec
from ..train.curves import loss_label
from ..train.checkpoint import CHECKPOINT, PREVIOUS, CheckpointError, load_latest
from ..train.runs import load_data, make_config, train_run
from . import common

DESCRIPTION = """\
Train one model by SVI and write a run folder: config.json (everything to rebuild the model),
checkpoint.pt (+ checkpoint.prev.pt, the last good copy) every --checkpoint-every steps and at the
end, checkpoint.best.pt (the best validation loss so far), history.json (loss per step, validation
loss) and training.png (both curves). Ctrl-C writes a checkpoint first. --steps is the step count
to reach: --resume continues a run exactly where it stopped (model, optimizer, learning-rate
schedule, early stopping, RNG, batch order) up to --steps; before writing anything it refuses a
checkpoint that is not the folder's run (config.json names another model or sizes), a --precision
other than the run's, and a --steps below the run's step; a run already at --steps trains and
writes nothing and says so (exit 0). --patience N stops early after N
validations without a new best; --lr-schedule plateau lowers the learning rate on plateaus.
--preset NAME fills the flags not given ('pyro-vrnn presets' lists them).
""" + common.DEFAULTS_NOTE + """

examples:
  pyro-vrnn train --preset music --data music:jsb_chorales.pickle --out runs/jsb
  pyro-vrnn train --model vrnn-gmm --data speech-synthetic --steps 500 --out runs/vrnn-gmm
  pyro-vrnn train --model vrnn-gmm --data speech-synthetic --steps 1000 --out runs/vrnn-gmm --resume
  pyro-vrnn train --model storn --data music:jsb_chorales.pickle --epochs 20 --out runs/storn-jsb
  pyro-vrnn train --model vrnn-normal --guide smoothing --emission handwriting \\
                  --data handwriting:omniglot.npz --steps 2000 --out runs/hw
  paper sizes:  --preset paper (--h-dim 2000 --z-dim 200 --feature-dims 600,600,600,600 ...)

""" + common.DISTRIBUTED_NOTE


def add_parser(subparsers) -> None:
    """Add ``pyro-vrnn train`` to ``subparsers``."""
    p = subparsers.add_parser("train", help="train one model into a run folder", description=DESCRIPTION,
                       formatter_class=common.Formatter)
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder to write (or resume)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in RUN_DIR from its latest checkpoint (exactly; flags not given are "
                        "taken from the run, and flags that contradict it are an error)")
    p.add_argument("--overwrite", action="store_true", help="start again even if RUN_DIR holds a run")
    common.add_preset_arg(p)
    common.add_model_args(p)
    common.add_data_args(p, required=False)
    common.add_training_args(p, common.TRAIN_DEFAULTS)
    common.add_runtime_args(p)
    common.add_precision_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    parallel, device = common.setup_processes(args)
    log = common.log(args, parallel)
    common.apply_preset(args, log)
    run_dir = Path(args.out)
    saved = None
    if args.resume and ((run_dir / CHECKPOINT).exists() or (run_dir / PREVIOUS).exists()):
        saved = load_latest(run_dir, map_location="cpu")[0]["config"]
    elif args.resume:
        log(f"{run_dir}: no checkpoint yet; starting a new run")
    elif not args.overwrite and ((run_dir / CHECKPOINT).exists() or (run_dir / PREVIOUS).exists()):
        raise CheckpointError(f"{run_dir} already holds a run; pass --resume to continue it or --overwrite "
                              "to start again")
    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite contradict each other")
    name = args.model or (saved and saved["model"]["name"])
    data = args.data or (saved and saved["data"])
    if not name:
        raise ValueError("--model is required (unless --resume finds a run)")
    if not data:
        raise ValueError("--data is required (unless --resume finds a run)")
    if saved is not None and name != saved["model"]["name"]:
        raise CheckpointError(f"{run_dir} holds a checkpoint of model {saved['model']['name']!r}, not {name!r}")
    options = common.data_options(args, saved and saved.get("data_options"))
    recorded = saved.get("data_resolved") if saved is not None and data == saved["data"] else None
    dataset = load_data({"data": data, "data_options": options, "data_resolved": recorded})
    parts = common.spec_kwargs(args, saved and saved["model"])
    if parts["emission"] is None and dataset.emission == "bernoulli":  # 0/1 data (an all-binary series)
        parts["emission"] = "bernoulli"
    spec = model_spec(name, dataset.x_dim, kind=dataset.kind, **parts)
    training = common.training_settings(args, sequence_lengths(dataset.train), saved and saved["training"])
    seed = args.seed if args.seed is not None else (saved["seed"] if saved else 0)
    if saved is None and args.valid_every is None:
        training["valid_every"] = common.TRAIN_DEFAULTS["valid_every"]
    config = make_config(spec, data, data_options=options, seed=seed, **training)
    log(dataset.describe())
    result = train_run(config, run_dir, resume=args.resume, overwrite=args.overwrite, device=device,
                       dataset=dataset, progress=not args.quiet and (parallel is None or parallel.is_main), log=log,
                       parallel=parallel, precision=args.precision)
    if result["trained"]:
        log(f"{name}: steps {result['start_step']} -> {result['step']} in {result['seconds']:.1f} s; "
            f"loss ({loss_label(training['elbo'], training['num_particles'])} per step, last 50) "
            f"{result['final_loss']:.4f}; run folder {run_dir}")
    return 0
