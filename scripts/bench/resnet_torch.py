"""The computations of `bench resnet` in PyTorch (same machine, same run): CIFAR ResNet-20/110 training
steps at batch 128, ResNet-101 224x224 inference at batch 1, and the time and peak memory of a ResNet-101
training step at batch 8. Models are the plain-torch torchvision-structured ones of
scripts/fixtures/resnet_fixtures.py. Usage: python resnet_torch.py [--threads N] [--iters N] [--only r20,...]
Prints one JSON object. A reference for benchmarks only, never a dependency of the project."""
import argparse, importlib.util, json, os, resource, statistics, sys, time
import torch
import torch.nn.functional as F

from torch_common import rf

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=2)
p.add_argument("--iters", type=int, default=5)
p.add_argument("--only", default="r20,r110,r101,r101train")
a = p.parse_args()
torch.set_num_threads(a.threads)
parts = set(a.only.split(","))
out = {}

def med(f, iters):
    f()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)

def step(model, opt, x, y):
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()

for key, n in [("r20", 3), ("r110", 18)]:
    if key not in parts: continue
    m = rf.CifarResNet(n=n).train()
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(128, 3, 32, 32); y = torch.arange(128) % 10
    out[key + "_train_step_s"] = med(lambda: step(m, opt, x, y), a.iters)

if "r101" in parts:
    m = rf.ResNet(rf.Bottleneck, [3, 4, 23, 3]).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        out["r101_infer_s"] = med(lambda: m(x), a.iters)

if "r101train" in parts:
    m = rf.ResNet(rf.Bottleneck, [3, 4, 23, 3]).train()
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(8, 3, 224, 224); y = torch.arange(8)
    step(m, opt, x, y)
    t0 = time.perf_counter(); step(m, opt, x, y); out["r101_train_b8_s"] = time.perf_counter() - t0
    out["r101_train_b8_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3

print(json.dumps(out, sort_keys=True))
