#!/usr/bin/env bash
# The main job on sample_data/: ingest every source, solve mask tokens (offline `cells` backend),
# export shards in several schemes, verify them, and print a summary. Used by `make demo`.
set -euo pipefail
GTOK=${1:-gtok}
OUT=${2:-out/demo}
S=sample_data
rm -rf "$OUT"
mkdir -p "$OUT"

echo "== ingest" >&2
"$GTOK" ingest coco --instances $S/coco/annotations/instances_val2017_sample.json \
  --images $S/coco/val2017 --out "$OUT/coco.jsonl"
"$GTOK" ingest refcoco --dataset refcoco --refs "$S/refcoco/refs(unc).p" --instances $S/refcoco/instances.json \
  --images $S/coco/val2017 --out "$OUT/refcoco.jsonl"
"$GTOK" ingest flickr30k --annotations $S/flickr30k/Annotations --sentences $S/flickr30k/Sentences \
  --images $S/flickr30k/images --out "$OUT/flickr30k.jsonl"

echo "== masks (cells backend, grid 32)" >&2
"$GTOK" masks "$OUT/refcoco.jsonl" --images $S/coco/val2017 --out "$OUT/refcoco.masks.jsonl"

echo "== export + verify" >&2
run() {  # run NAME RECORDS export-args...
  local name=$1 records=$2; shift 2
  "$GTOK" export "$records" --out "$OUT/shards/$name" "$@"
  "$GTOK" verify "$OUT/shards/$name"
}
run rec-bins-llava "$OUT/refcoco.jsonl" --scheme bins --task rec --format llava
run rec-grid-mask-messages "$OUT/refcoco.masks.jsonl" --scheme grid --task rec --shape mask --format messages
run reg-loc-conv "$OUT/refcoco.jsonl" --scheme loc --task reg --format conversations
run detect-qwen25 "$OUT/coco.jsonl" --scheme qwen2.5-vl --task detect --format messages
run multi-paligemma "$OUT/coco.jsonl" --scheme paligemma --task multi --format llava
run caption-kosmos2 "$OUT/flickr30k.jsonl" --scheme kosmos2 --task grounded-caption --format llava
run refine-grid-llava "$OUT/refcoco.jsonl" --scheme grid --task refine --refine-turns 2 --format llava
run count-qwen25 "$OUT/coco.jsonl" --scheme qwen2.5-vl --task count --negatives 0.5 --format messages
run relation-qwen2 "$OUT/coco.jsonl" --scheme qwen2-vl --task relation --phrases "$OUT/refcoco.jsonl" --format llava

echo "== stats + a picture" >&2
"$GTOK" stats "$OUT/shards/rec-grid-mask-messages"
"$GTOK" stats "$OUT/shards/relation-qwen2"
"$GTOK" show "$OUT/shards/caption-kosmos2" --images $S/flickr30k/images --index 0 --out "$OUT/caption.png"
echo "done: shards under $OUT/shards, picture $OUT/caption.png" >&2
