#!/usr/bin/env bash
# The fidelity tables of docs/results.md (issue 12), one command each, on one CPU thread per training.
#
#   bash benchmarks/fidelity.sh TABLE [RUNS_DIR]      TABLE: jsb | nottingham | librispeech | omniglot
#
# Music (jsb, nottingham): each model trained with the `music` preset (the DMM: `dmm`) within BUDGET seconds of
# wall-clock (default 3600; at the budget SIGINT makes the CLI write a checkpoint and stop), early-
# stopped on validation, then its best-on-validation checkpoint scored on the test split by
# importance sampling with K = PARTICLES (default 500). MODELS picks a subset (default: all six).
# Speech (librispeech) and handwriting (omniglot): `pyro-vrnn compare` with the `speech` /
# `handwriting` preset and a fixed step count (STEPS), so a rerun is the same run whatever the load;
# speech is scored on whole test utterances and on 0.5 s test chunks, and writes WAV samples.
# Every command resumes: run the same line again to continue or to reuse what is finished.
# Data: $PYRO_VRNN_DATA, else ../shared/data beside the project. The table is printed at the end
# (benchmarks/results_table.py, every figure read from the run folders).
set -euo pipefail
TABLE=${1:?usage: bash benchmarks/fidelity.sh jsb|nottingham|librispeech|omniglot [RUNS_DIR]}
HERE=$(cd "$(dirname "$0")" && pwd)
RUNS=${2:-runs/fidelity}/$TABLE
DATA=${PYRO_VRNN_DATA:-$HERE/../../shared/data}
BUDGET=${BUDGET:-3600}
PARTICLES=${PARTICLES:-500}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$RUNS"

budgeted() {  # a command cut at BUDGET seconds by SIGINT (exit 124 then) counts as done
    local rc=0
    timeout -s INT "$BUDGET" "$@" || rc=$?
    [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ] || exit "$rc"
}

music() {  # PICKLE
    local name flags preset
    for name in ${MODELS:-rnn vrnn vrnn-smoothing vrnn-i storn dmm}; do
        preset=music
        case $name in
            rnn) flags=(--model rnn-normal) ;;
            vrnn) flags=(--model vrnn-normal) ;;
            vrnn-smoothing) flags=(--model vrnn-normal --guide smoothing) ;;
            vrnn-i) flags=(--model vrnn-i) ;;
            storn) flags=(--model storn) ;;
            dmm) preset=dmm; flags=(--model dmm) ;;  # Pyro's examples/dmm.py sizes, the music training
            *) echo "unknown model $name" >&2; exit 2 ;;
        esac
        budgeted pyro-vrnn train --preset "$preset" "${flags[@]}" --data "music:$DATA/music/$1" --threads 1 --quiet \
            --out "$RUNS/$name" --resume
        [ -f "$RUNS/$name/eval_test.json" ] || pyro-vrnn evaluate "$RUNS/$name" --split test \
            --particles "$PARTICLES" --threads 1 --quiet --json "$RUNS/$name/eval_test.json"
    done
}

case $TABLE in
    jsb) music jsb_chorales.pickle ;;
    nottingham) music nottingham.pickle ;;
    librispeech)
        pyro-vrnn compare --preset speech --models rnn-normal,rnn-gmm,storn,vrnn-normal,vrnn-gmm \
            --data "speech:$DATA/speech/librispeech" --steps "${STEPS:-2000}" --particles 50 --threads 1 \
            --quiet --out "$RUNS" --resume
        for run in "$RUNS"/*/; do
            [ -f "$run/eval_chunks.json" ] || pyro-vrnn evaluate "$run" --data-option test_chunking=chunks \
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
    *) echo "unknown table $TABLE (jsb, nottingham, librispeech, omniglot)" >&2; exit 2 ;;
esac

unit=step; evals=(--eval eval_test.json)
case $TABLE in librispeech) unit=sequence; evals=(--eval eval_test.json --eval eval_chunks.json) ;;
               omniglot) unit=sequence ;; esac
python "$HERE/results_table.py" "$RUNS"/*/ --unit "$unit" "${evals[@]}" | tee "$RUNS/table.md"
