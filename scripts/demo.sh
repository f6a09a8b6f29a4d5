#!/usr/bin/env bash
# The main job on its embedded default: install, build, gather text from Debian
# packages (the Bible, dictionaries, WordNet, fortunes, man pages, Python's
# standard library, C headers, licence texts), run the data pipeline over it
# (clean, PII, quality filters, dedup, mixing -> byte-level token shards with a
# manifest and a report), then pretrain a small GPT on the shards and write a
# checkpoints, metrics and TensorBoard events to runs/debian/, score it on
# HellaSwag, PIQA and LAMBADA, and render runs/debian/report.html. About 6
# minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
./build/kiln data gather debian -o runs/corpus/raw --max-mb 16
./build/kiln data run configs/debian-pipeline.yaml
rm -rf runs/debian  # a fresh demo run each time (kiln pretrain refuses to mix with an old run)
./build/kiln pretrain configs/debian-demo.yaml "$@"
./build/kiln eval --model runs/debian --tasks hellaswag,piqa,lambada_openai --limit 300 --output runs/debian/eval.json
./build/kiln report runs/debian
echo "report: runs/debian/report.html (metrics: runs/debian/metrics.jsonl; tensorboard --logdir runs/debian/tb)"
