#!/usr/bin/env bash
# The fidelity tables of docs/results.md (issues 12 and 21), one command each, on one CPU thread per training.
#
#   bash benchmarks/fidelity.sh TABLE [RUNS_DIR]
#   TABLE: jsb | nottingham | musedata | pianomidi | librispeech | omniglot
#
# Music (the four piano-roll sets): each model trained within BUDGET seconds of wall-clock (default 3600;
# at the budget SIGINT makes the CLI write a checkpoint and stop), early-stopped on validation, then its
# best-on-validation checkpoint scored on the test split by importance sampling with K = PARTICLES
# (default 500, eval_test.json) and by SMC with K = SMC_PARTICLES (default 100, eval_test_smc100.json).
# MODELS picks a subset (default: all), each with one preset on every set:
#   rnn vrnn vrnn-smoothing vrnn-i storn    the `music` preset (`music-long` on musedata/pianomidi: windows
#                                           of 100 steps), Bernoulli keys
#   dmm                                     the `dmm` preset (Pyro's examples/dmm.py sizes)
#   srnn vrnn-fivo                          as rnn..storn, the SRNN / the VRNN trained by FIVO (K = 4)
#   vrnn-ar srnn-ar vrnn-ar-fivo            the `music-ar` preset on all four sets (windows of 100 steps,
#                                           the autoregressive emission): VRNN, SRNN, VRNN trained by FIVO
#   vrnn-ar-wd                              the `music-ar` VRNN with Adam's L2 weight decay 0.5 (Piano-midi)
# Speech (librispeech) and handwriting (omniglot): `pyro-vrnn compare` with the `speech` /
# `handwriting` preset and a fixed step count (STEPS), so a rerun is the same run whatever the load;
# speech is scored on whole test utterances (IS, and SMC with K = 50: eval_test_smc.json) and on
# 0.5 s test chunks, and writes WAV samples.
# Every command resumes: run the same line again to continue or to reuse what is finished (an evaluation
# is reused while it is newer than the checkpoint it scores; a run trained further is evaluated again).
# Data: $PYRO_VRNN_DATA, else ../shared/data beside the project. The table is printed at the end
# (benchmarks/results_table.py, every figure read from the run folders).
set -euo pipefail
TABLE=${1:?usage: bash benchmarks/fidelity.sh jsb|nottingham|musedata|pianomidi|librispeech|omniglot [RUNS_DIR]}
HERE=$(cd "$(dirname "$0")" && pwd)
RUNS=${2:-runs/fidelity}/$TABLE
DATA=${PYRO_VRNN_DATA:-$HERE/../../shared/data}
BUDGET=${BUDGET:-3600}
PARTICLES=${PARTICLES:-500}
SMC_PARTICLES=${SMC_PARTICLES:-100}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$RUNS"

evaluated() {  # the evaluation JSON $1 is newer than the checkpoint it scores (the best on validation, else the latest)
    local checkpoint
    checkpoint=$(dirname "$1")/checkpoint.best.pt
    [ -f "$checkpoint" ] || checkpoint=$(dirname "$1")/checkpoint.pt
    [ -f "$1" ] && [ "$1" -nt "$checkpoint" ]
}

budgeted() {  # a command cut at BUDGET seconds by SIGINT (exit 124 then) counts as done
    local rc=0
    timeout -s INT "$BUDGET" "$@" || rc=$?
    [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ] || exit "$rc"
}

music() {  # PICKLE BASE_PRESET (music for the short sets, music-long for the long ones)
    local name flags preset
    for name in ${MODELS:-rnn vrnn vrnn-smoothing vrnn-i storn dmm srnn vrnn-fivo vrnn-ar srnn-ar vrnn-ar-fivo vrnn-ar-wd}; do
        preset=$2
        case $name in
            rnn) flags=(--model rnn-normal) ;;
            vrnn) flags=(--model vrnn-normal) ;;
            vrnn-smoothing) flags=(--model vrnn-normal --guide smoothing) ;;
            vrnn-i) flags=(--model vrnn-i) ;;
            storn) flags=(--model storn) ;;
            dmm) preset=dmm; flags=(--model dmm)  # Pyro's examples/dmm.py sizes, the music training
                 [ "$2" = music ] || flags+=(--train-window 100) ;;
            srnn) flags=(--model srnn) ;;
            vrnn-fivo) flags=(--model vrnn-normal --elbo fivo --train-particles 4) ;;
            vrnn-ar) preset=music-ar; flags=(--model vrnn-normal) ;;
            srnn-ar) preset=music-ar; flags=(--model srnn) ;;
            vrnn-ar-fivo) preset=music-ar; flags=(--model vrnn-normal --elbo fivo --train-particles 4) ;;
            vrnn-ar-wd) preset=music-ar; flags=(--model vrnn-normal --weight-decay 0.5) ;;
            *) echo "unknown model $name" >&2; exit 2 ;;
        esac
        budgeted pyro-vrnn train --preset "$preset" "${flags[@]}" --data "music:$DATA/music/$1" --threads 1 --quiet \
            --out "$RUNS/$name" --resume
        evaluated "$RUNS/$name/eval_test_smc100.json" || pyro-vrnn evaluate "$RUNS/$name" --split test \
            --particles "$SMC_PARTICLES" --estimator is,smc --threads 1 --quiet --json "$RUNS/$name/eval_test_smc100.json"
        evaluated "$RUNS/$name/eval_test.json" || pyro-vrnn evaluate "$RUNS/$name" --split test \
            --particles "$PARTICLES" --threads 1 --quiet --json "$RUNS/$name/eval_test.json"
    done
}

case $TABLE in
    jsb) music jsb_chorales.pickle music ;;
    nottingham) music nottingham.pickle music ;;
    musedata) music muse_data.pickle music-long ;;
    pianomidi) music piano_midi.pickle music-long ;;
    librispeech)
        pyro-vrnn compare --preset speech --models rnn-normal,rnn-gmm,storn,vrnn-normal,vrnn-gmm \
            --data "speech:$DATA/speech/librispeech" --steps "${STEPS:-2000}" --particles 50 --threads 1 \
            --quiet --out "$RUNS" --resume
        for run in "$RUNS"/*/; do
            evaluated "$run/eval_test_smc.json" || pyro-vrnn evaluate "$run" --particles 50 --estimator is,smc \
                --threads 1 --quiet --json "$run/eval_test_smc.json"
            evaluated "$run/eval_chunks.json" || pyro-vrnn evaluate "$run" --data-option test_chunking=chunks \
                --particles 50 --max-sequences 400 --threads 1 --quiet --json "$run/eval_chunks.json"
        done
        [ -d "$RUNS/vrnn-gmm/samples" ] || pyro-vrnn sample "$RUNS/vrnn-gmm" --num 3 --length 80 \
            --out "$RUNS/vrnn-gmm/samples" --threads 1 --quiet
        ;;
    omniglot)
        pyro-vrnn compare --preset handwriting --models rnn-gmm,storn,vrnn-gmm \
            --data "handwriting:$DATA/handwriting/omniglot.npz" --steps "${STEPS:-4000}" --particles 100 \
            --threads 1 --quiet --out "$RUNS" --resume
        ;;
    *) echo "unknown table $TABLE (jsb, nottingham, musedata, pianomidi, librispeech, omniglot)" >&2; exit 2 ;;
esac

unit=step; evals=(--eval eval_test.json --eval eval_test_smc100.json)
case $TABLE in librispeech) unit=sequence; evals=(--eval eval_test.json --eval eval_test_smc.json --eval eval_chunks.json) ;;
               omniglot) unit=sequence ;; esac
python "$HERE/results_table.py" "$RUNS"/*/ --unit "$unit" "${evals[@]}" | tee "$RUNS/table.md"
