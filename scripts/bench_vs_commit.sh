#!/usr/bin/env bash
# This tree's engine against an earlier commit's on the same CPU, in the same run: the issue-table benchmarks
# (CIFAR ResNet-20/110 training steps, ResNet-101 inference and training step with peak RSS, the R101-C4 detector
# forward and whole detect, a fine-tuning iteration with peak RSS), the two builds taking turns, RUNS times each
# (default 3), medians and the ratio this / earlier. It answers "is any workload slower than before?" on a CPU
# where the earlier figures were measured (e.g. the AVX-512 tables of docs/PERFORMANCE.md). Usage:
#
#   bash scripts/bench_vs_commit.sh [REV]     # REV defaults to b505570, the code before the AVX2 work
#
# Both builds run the best instruction-set path the CPU has (the earlier code has no ENGINE_ISA switch). The
# earlier tree is exported with `git archive` into a temporary folder and built there (release, bench only);
# KEEP=1 keeps that folder. ONLY=resnet,detector,finetune picks a subset.
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:-b505570}
RUNS=${RUNS:-3}
ONLY=${ONLY:-resnet,detector,finetune}
git rev-parse --verify --quiet "$REV^{commit}" >/dev/null || {
  echo "bench_vs_commit.sh: '$REV' is not a commit of this repository" >&2; exit 2; }
old=$(mktemp -d)
out=$(mktemp -d)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$old"' EXIT
git archive "$REV" | tar -x -C "$old"
echo "building this tree and $REV (release, bench)" >&2
swift build -c release --product bench >/dev/null
(cd "$old" && swift build -c release --product bench >/dev/null)
declare -A bin=([new]=.build/release/bench [old]="$old/.build/release/bench")
has() { [[ ",$ONLY," == *",$1,"* ]]; }
for run in $(seq 1 "$RUNS"); do
  # The two builds alternate, and which goes first alternates too, so that drift on a busy machine spreads
  # over both sides.
  if (( run % 2 )); then sides="old new"; else sides="new old"; fi
  for side in $sides; do
    echo "run $run of $RUNS: $side" >&2
    b=${bin[$side]}
    if has resnet; then
      "$b" resnet --iters 5 --only r20,r110,r101 --json "$out/${side}_resnet_$run.json" >&2
      "$b" resnet --only r101train --json "$out/${side}_r101train_$run.json" >&2
    fi
    if has detector; then "$b" detector --iters 3 --json "$out/${side}_detector_$run.json" >&2; fi
    if has finetune; then "$b" finetune --iters 3 --json "$out/${side}_finetune_$run.json" >&2; fi
  done
done
python3 - "$out" "$RUNS" "$REV" <<'PYEOF'
import json, os, statistics, sys
d, runs, rev = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def value(side, run, part, key):
    p = os.path.join(d, f"{side}_{part}_{run}.json")
    if not os.path.exists(p): return None
    return json.load(open(p)).get(key)
rows = [("CIFAR ResNet-20 training step, batch 128 (s)", "resnet", "r20_train_step_s"),
        ("CIFAR ResNet-110 training step, batch 128 (s)", "resnet", "r110_train_step_s"),
        ("ResNet-101 inference 224x224, batch 1 (s)", "resnet", "r101_infer_s"),
        ("ResNet-101 training step, batch 8 (s)", "r101train", "r101_train_b8_s"),
        ("ResNet-101 training step, batch 8: peak RSS (MB)", "r101train", "r101_train_b8_peak_rss_mb"),
        ("R101-C4 600x1000, 300 proposals (s)", "detector", "c4_forward_s"),
        ("whole detect() of a 600x1000 image (s)", "detector", "detect_s"),
        ("R101-C4 fine-tuning iteration, 128 RoIs (s)", "finetune", "finetune_iter_s"),
        ("R101-C4 fine-tuning: peak RSS (MB)", "finetune", "peak_rss_mb")]
first = next((json.load(open(os.path.join(d, f))) for f in sorted(os.listdir(d)) if f.startswith("new_")), {})
print(f"CPU: {first.get('cpu', '?')}; this tree's kernels: {first.get('isa', '?')}; {runs} runs, medians\n")
print(f"| workload | this tree | {rev} | this / {rev} | ratios of the runs |")
print("|---|---:|---:|---:|---|")
slower = []
for name, part, key in rows:
    pairs = [(value("new", k, part, key), value("old", k, part, key)) for k in range(1, runs + 1)]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    if not pairs: continue
    mn, mo = statistics.median(a for a, _ in pairs), statistics.median(b for _, b in pairs)
    fmt = "{:.0f}" if "MB" in name else "{:.3f}"
    each = ", ".join(f"{a / b:.2f}" for a, b in pairs)
    print(f"| {name} | {fmt.format(mn)} | {fmt.format(mo)} | {mn / mo:.2f}x | {each} |")
    if mn > mo: slower.append(name)
print()
print("slower than " + rev + ": " + ("; ".join(slower) if slower else "none"))
PYEOF
