#!/usr/bin/env bash
# Re-make the two README pictures from sample_data/ (deterministic: same inputs, same PNGs).
#   docs/rec_grid_mask.png      one RefCOCO REC sample, grid scheme, mask tokens (cells backend, 32x32)
#   docs/flickr30k_caption.png  one Flickr30k grounded caption, kosmos2 scheme
#   docs/relation_example.png   one COCO relation line ("what"), qwen2-vl scheme
#   docs/count_example.png      one COCO count line (5 persons), qwen2.5-vl scheme
# Usage: bash scripts/make_docs_pictures.sh [GTOK] [WORKDIR]
set -euo pipefail
GTOK=${1:-.venv/bin/gtok}
WORK=${2:-$(mktemp -d)}
S=sample_data
mkdir -p "$WORK" docs

"$GTOK" ingest refcoco --dataset refcoco --refs "$S/refcoco/refs(unc).p" --instances $S/refcoco/instances.json \
  --images $S/coco/val2017 --out "$WORK/refcoco.jsonl"
"$GTOK" masks "$WORK/refcoco.jsonl" --backend cells --grid 32 --images $S/coco/val2017 \
  --out "$WORK/refcoco.masks.jsonl"
rm -rf "$WORK/rec-grid-mask"
"$GTOK" export "$WORK/refcoco.masks.jsonl" --scheme grid --task rec --shape mask --format llava \
  --out "$WORK/rec-grid-mask"
"$GTOK" show "$WORK/rec-grid-mask" --images $S/coco/val2017 --id refcoco:unc:testA:ref6:sent11 \
  --records "$WORK/refcoco.masks.jsonl" --grid-overlay --max-turn-lines 6 --palette --out docs/rec_grid_mask.png

"$GTOK" ingest flickr30k --annotations $S/flickr30k/Annotations --sentences $S/flickr30k/Sentences \
  --images $S/flickr30k/images --out "$WORK/flickr30k.jsonl"
rm -rf "$WORK/caption-kosmos2"
"$GTOK" export "$WORK/flickr30k.jsonl" --scheme kosmos2 --task grounded-caption --format llava \
  --out "$WORK/caption-kosmos2"
"$GTOK" show "$WORK/caption-kosmos2" --images $S/flickr30k/images --index 0 --palette \
  --out docs/flickr30k_caption.png

"$GTOK" ingest coco --instances $S/coco/annotations/instances_val2017_sample.json --images $S/coco/val2017 \
  --out "$WORK/coco.jsonl"
rm -rf "$WORK/relation-qwen2"
"$GTOK" export "$WORK/coco.jsonl" --scheme qwen2-vl --task relation --format llava --out "$WORK/relation-qwen2"
"$GTOK" show "$WORK/relation-qwen2" --images $S/coco/val2017 --id coco:val2017:22192:instances:pair0-2 \
  --palette --out docs/relation_example.png
rm -rf "$WORK/count-qwen25"
"$GTOK" export "$WORK/coco.jsonl" --scheme qwen2.5-vl --task count --negatives 0.5 --format llava \
  --out "$WORK/count-qwen25"
"$GTOK" show "$WORK/count-qwen25" --images $S/coco/val2017 --id coco:val2017:311002:instances:count:1 \
  --palette --out docs/count_example.png
PICTURES="docs/rec_grid_mask.png docs/flickr30k_caption.png docs/relation_example.png docs/count_example.png"
chmod 644 $PICTURES
ls -l $PICTURES
