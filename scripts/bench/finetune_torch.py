"""One fine-tuning iteration of a ResNet-101-C4 Faster R-CNN in PyTorch at 600x1000, batch 1, 128 RoIs,
the same computation as `bench finetune` (minus target assignment and NMS, which PyTorch would run in
torchvision's compiled ops): frozen-BN trunk forward/backward from layer2 on (stem and layer1 frozen), RPN
head with BCE over 256 anchors and smooth L1, RoI max pooling of 128 RoIs (per-RoI crop + adaptive max
pool, differentiable), res5 head forward/backward, cross-entropy + smooth L1, SGD with momentum.
Usage: python finetune_torch.py [--threads N] [--iters N]. Prints JSON."""
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

net = resnet101()
net.eval()   # frozen BN: running statistics, no updates
for m in net.modules():
    if isinstance(m, nn.BatchNorm2d):
        for q in m.parameters(): q.requires_grad_(False)
for q in list(net.conv1.parameters()) + list(net.layer1.parameters()): q.requires_grad_(False)
rpn_conv = nn.Conv2d(1024, 1024, 3, padding=1); cls = nn.Conv2d(1024, 9, 1); box = nn.Conv2d(1024, 36, 1)
cls_score = nn.Linear(2048, 21); bbox_pred = nn.Linear(2048, 84)
params = [q for q in list(net.parameters()) + list(rpn_conv.parameters()) + list(cls.parameters()) + list(box.parameters())
          + list(cls_score.parameters()) + list(bbox_pred.parameters()) if q.requires_grad]
opt = torch.optim.SGD(params, lr=0.001, momentum=0.9, weight_decay=1e-4)
x = torch.randn(1, 3, 600, 1000)
rois, g = random_rois(128)
anchor_idx = torch.randperm(38 * 63 * 9, generator=g)[:256]
anchor_lbl = (torch.rand(256, generator=g) < 0.5).float()
roi_lbl = torch.randint(0, 21, (128,), generator=g)


def step():
    f = trunk(net, x)
    t = F.relu(rpn_conv(f))
    logits = cls(t).permute(0, 2, 3, 1).reshape(-1)
    deltas = box(t).permute(0, 2, 3, 1).reshape(-1, 4)
    l1 = F.binary_cross_entropy_with_logits(logits[anchor_idx], anchor_lbl)
    l2 = F.smooth_l1_loss(deltas[anchor_idx[:64]], torch.zeros(64, 4), beta=1 / 9, reduction="sum") / 256
    h = net.layer4(roi_pool(f, rois)).mean(dim=(2, 3))
    l3 = F.cross_entropy(cls_score(h), roi_lbl)
    l4 = F.smooth_l1_loss(bbox_pred(h)[:32, 4:8], torch.zeros(32, 4), reduction="sum") / 128
    opt.zero_grad(set_to_none=True)
    (l1 + l2 + l3 + l4).backward()
    opt.step()

step()
ts = []
for _ in range(a.iters):
    s = time.perf_counter(); step(); ts.append(time.perf_counter() - s)
print(json.dumps({"finetune_iter_s": statistics.median(ts), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3}, sort_keys=True))
