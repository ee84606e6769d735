"""ResNet-101-C4 Faster R-CNN inference in PyTorch at 600x1000 with 300 fixed proposals, the same
computation as `bench detector`'s first number: trunk (conv1..layer3) + RPN head (3x3 conv + two 1x1) +
RoI max pooling to 14x14 (a per-RoI crop and adaptive max pool: torchvision's compiled ops do not load
on this wheel) + res5 head (layer4, global average pool, two linear layers). Random weights (the cost
does not depend on them). Usage: python detector_torch.py [--threads N] [--iters N]. Prints JSON."""
import argparse, importlib.util, json, os, resource, statistics, time
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_common import resnet101, trunk, random_rois, roi_pool

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=2)
p.add_argument("--iters", type=int, default=3)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)

net = resnet101().eval()
rpn_conv = nn.Conv2d(1024, 1024, 3, padding=1); cls = nn.Conv2d(1024, 9, 1); box = nn.Conv2d(1024, 36, 1)
cls_score = nn.Linear(2048, 21); bbox_pred = nn.Linear(2048, 84)
x = torch.randn(1, 3, 600, 1000)
props, g = random_rois(300)


timings = {"trunk": [], "rpn": [], "roi": [], "head": []}
def forward():
    t0 = time.perf_counter()
    f = trunk(net, x)
    t1 = time.perf_counter()
    t = F.relu(rpn_conv(f)); cls(t); box(t)
    t2 = time.perf_counter()
    r = roi_pool(f, props)
    t3 = time.perf_counter()
    h = net.layer4(r).mean(dim=(2, 3)); cls_score(h); bbox_pred(h)
    t4 = time.perf_counter()
    for k, v in zip(timings, [t1 - t0, t2 - t1, t3 - t2, t4 - t3]): timings[k].append(v)

with torch.no_grad():
    forward()
    for k in timings: timings[k].clear()
    ts = []
    for _ in range(a.iters):
        s = time.perf_counter(); forward(); ts.append(time.perf_counter() - s)
print(json.dumps({"c4_forward_s": statistics.median(ts), **{k + "_s": statistics.median(v) for k, v in timings.items()},
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3}, sort_keys=True))
