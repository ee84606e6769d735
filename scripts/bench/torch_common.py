"""Pieces shared by the PyTorch side of the detector benchmarks (detector_torch.py, finetune_torch.py): the
torchvision-structured ResNet of scripts/fixtures/resnet_fixtures.py, the seeded random RoIs, and RoI max
pooling in plain torch (torchvision's compiled ops do not load on this wheel)."""
import importlib.util
import os

import torch
import torch.nn.functional as F

_here = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("rf", os.path.join(_here, "..", "fixtures", "resnet_fixtures.py"))
rf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rf)


def resnet101():
    """A torchvision-structured ResNet-101 (random weights)."""
    return rf.ResNet(rf.Bottleneck, [3, 4, 23, 3])


def trunk(net, x):
    """conv1 .. layer3 (stride 16)."""
    return net.layer3(net.layer2(net.layer1(net.maxpool(F.relu(net.bn1(net.conv1(x)))))))


def random_rois(n, seed=2, width=1000, height=600):
    """n boxes with sides in [32, 400) inside a width x height image, from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    rois = []
    for _ in range(n):
        w, h = 32 + 368 * torch.rand(1, generator=g).item(), 32 + 368 * torch.rand(1, generator=g).item()
        x0, y0 = (width - w) * torch.rand(1, generator=g).item(), (height - h) * torch.rand(1, generator=g).item()
        rois.append((x0, y0, x0 + w, y0 + h))
    return rois, g


def roi_pool(f, boxes, out=14, scale=1 / 16):
    """RoI max pooling: corners rounded to the feature grid, then an adaptive max pool per RoI (differentiable)."""
    H, W = f.shape[2], f.shape[3]
    res = []
    for (x1, y1, x2, y2) in boxes:
        xs, ys = int(round(x1 * scale)), int(round(y1 * scale))
        xe, ye = max(int(round(x2 * scale)), xs), max(int(round(y2 * scale)), ys)
        res.append(F.adaptive_max_pool2d(f[:, :, min(ys, H - 1):min(ye, H - 1) + 1, min(xs, W - 1):min(xe, W - 1) + 1], out))
    return torch.cat(res)
