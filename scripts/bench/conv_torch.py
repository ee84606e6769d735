"""Times the same convolutions as `bench conv` in PyTorch (same machine, same run) and merges both
into one table. Usage: python conv_torch.py SWIFT_RESULTS.json [--threads N] [--iters N]
Needs torch (CPU); it is a benchmark reference only, never a dependency of the project."""
import json, statistics, sys, time, argparse
import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("swift_json")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--iters", type=int, default=5)
a = p.parse_args()
torch.set_num_threads(a.threads)
sw = json.load(open(a.swift_json))

def shapes():
    s = [("resnet101_224_b1", "conv1 7x7/2", 1, 3, 224, 224, 64, 7, 2, 3)]
    inC, inH = 64, 56
    for i, (width, hw, blocks) in enumerate([(64, 56, 3), (128, 28, 4), (256, 14, 23), (512, 7, 3)]):
        st = 1 if i == 0 else 2
        t = f"layer{i+1}"
        s.append(("resnet101_224_b1", f"{t}.0 1x1 in", 1, inC, inH, inH, width, 1, 1, 0))
        s.append(("resnet101_224_b1", f"{t}.0 3x3/{st}", 1, width, inH, inH, width, 3, st, 1))
        s.append(("resnet101_224_b1", f"{t} 1x1 out", 1, width, hw, hw, width * 4, 1, 1, 0))
        s.append(("resnet101_224_b1", f"{t}.0 downsample", 1, inC, inH, inH, width * 4, 1, st, 0))
        if blocks > 1:
            s.append(("resnet101_224_b1", f"{t} 1x1 in", 1, width * 4, hw, hw, width, 1, 1, 0))
            s.append(("resnet101_224_b1", f"{t} 3x3", 1, width, hw, hw, width, 3, 1, 1))
        inC, inH = width * 4, hw
    c = "cifar_resnet20_b128"
    s += [(c, "conv1 3x3", 128, 3, 32, 32, 16, 3, 1, 1), (c, "stage1 3x3", 128, 16, 32, 32, 16, 3, 1, 1),
          (c, "stage2.0 3x3/2", 128, 16, 32, 32, 32, 3, 2, 1), (c, "stage2 3x3", 128, 32, 16, 16, 32, 3, 1, 1),
          (c, "stage3.0 3x3/2", 128, 32, 16, 16, 64, 3, 2, 1), (c, "stage3 3x3", 128, 64, 8, 8, 64, 3, 1, 1)]
    return s

def med(f, iters):
    f()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)

ours = {(r["net"], r["layer"]): r for r in sw["layers"]}
print(f"threads {a.threads}; sgemm ceiling measured by bench: {sw['sgemm_ceiling_gflops']:.1f} GFLOP/s; torch {torch.__version__}")
print("| net | layer | ours fwd ms | torch fwd ms | ours bwd ms | torch bwd ms |")
print("|---|---|---:|---:|---:|---:|")
tot = {}
for net, name, n, c, h, w, o, k, st, pad in shapes():
    x = torch.randn(n, c, h, w, requires_grad=True)
    wt = (torch.randn(o, c, k, k) * 0.05).requires_grad_()
    with torch.no_grad():
        tf = med(lambda: F.conv2d(x, wt, stride=st, padding=pad), a.iters)
    gy = torch.randn_like(F.conv2d(x, wt, stride=st, padding=pad))
    def fb():
        x.grad = None; wt.grad = None
        F.conv2d(x, wt, stride=st, padding=pad).backward(gy)
    tb = med(fb, a.iters) - tf
    r = ours[(net, name)]
    reps = r["repeats"]
    t = tot.setdefault(net, [0, 0, 0, 0])
    t[0] += r["fwd_ms"] * reps; t[1] += tf * 1e3 * reps; t[2] += r["bwd_ms"] * reps; t[3] += tb * 1e3 * reps
    print(f"| {net} | {name} | {r['fwd_ms']:.2f} | {tf*1e3:.2f} | {r['bwd_ms']:.2f} | {tb*1e3:.2f} |")
for net, t in tot.items():
    print(f"| {net} | **all convs (with repeats)** | **{t[0]:.1f}** | **{t[1]:.1f}** | **{t[2]:.1f}** | **{t[3]:.1f}** |")
