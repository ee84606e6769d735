"""The ONNX Runtime side of the inference comparison (scripts/bench_ort.sh): the same torchvision-structured
models as resnet_torch.py / detector_torch.py (scripts/fixtures/resnet_fixtures.py, random weights), exported to
ONNX (opset 17, TorchScript exporter, eval mode so batch norm is folded by ORT's optimizer) and run by ONNX
Runtime's CPU execution provider with the same thread count:
  r101       ResNet-101 224x224, batch 1 (logits)
  trunk      ResNet-101-C4 trunk (conv1 .. layer3) on 1x3x600x1000
  rpn        the RPN head on the trunk's 1024-channel map (3x3 conv + ReLU, 1x1 objectness and box convs)
  head       the res5 head on 300 RoIs of 1024x14x14 (layer4, global average pool, class and box linears)
Usage: python ort_bench.py [--threads N] [--iters N] [--only r101,trunk,rpn,head]. Prints one JSON object
(medians in seconds after one warm-up run, and ONNX Runtime's version). A reference for benchmarks only, never a
dependency of the project."""
import argparse, io, json, os, statistics, time, warnings

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_common import resnet101, trunk

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=2)
p.add_argument("--iters", type=int, default=5)
p.add_argument("--only", default="r101,trunk,rpn,head")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
parts = a.only.split(",")

net = resnet101().eval()


class Trunk(nn.Module):
    def __init__(self, net):
        super().__init__(); self.net = net

    def forward(self, x):
        return trunk(self.net, x)


class RPNHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1024, 1024, 3, padding=1); self.cls = nn.Conv2d(1024, 9, 1)
        self.box = nn.Conv2d(1024, 36, 1)

    def forward(self, f):
        t = F.relu(self.conv(f))
        return self.cls(t), self.box(t)


class Res5Head(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.layer4 = net.layer4; self.cls_score = nn.Linear(2048, 21); self.bbox_pred = nn.Linear(2048, 84)

    def forward(self, r):
        h = self.layer4(r).mean(dim=(2, 3))
        return self.cls_score(h), self.bbox_pred(h)


models = {"r101": (net, (1, 3, 224, 224)), "trunk": (Trunk(net).eval(), (1, 3, 600, 1000)),
          "rpn": (RPNHead().eval(), (1, 1024, 38, 63)), "head": (Res5Head(net).eval(), (300, 1024, 14, 14))}


def flops(model, x):
    """Multiply-adds x 2 of the convolutions and linear layers in one forward pass (forward hooks)."""
    total = [0]
    def conv_hook(m, inp, out):
        total[0] += 2 * out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
    def linear_hook(m, inp, out):
        total[0] += 2 * out.numel() * m.in_features
    hooks = [m.register_forward_hook(conv_hook if isinstance(m, nn.Conv2d) else linear_hook)
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(x)
    for h in hooks: h.remove()
    return total[0]

opts = ort.SessionOptions()
opts.intra_op_num_threads = a.threads
opts.inter_op_num_threads = 1
opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL

out = {"onnxruntime_version": ort.__version__, "threads": a.threads}
for key in parts:
    model, shape = models[key]
    x = torch.randn(*shape)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buf, opset_version=17, input_names=["x"], dynamo=False)
    sess = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    got = sess.run(None, feed)
    with torch.no_grad():
        want = model(x)
    want = want if isinstance(want, tuple) else (want,)
    # The exported graph computes what the torch model computes (relative to the largest magnitude).
    err = max(float(np.abs(g - w.numpy()).max() / max(np.abs(w.numpy()).max(), 1e-12)) for g, w in zip(got, want))
    ts = []
    for _ in range(a.iters):
        t0 = time.perf_counter(); sess.run(None, feed); ts.append(time.perf_counter() - t0)
    out[key + "_s"] = statistics.median(ts)
    out[key + "_gflop"] = flops(model, x) / 1e9
    model.eval()  # the exporter restores the mode it found; keep every shared module in eval mode
    out[key + "_max_rel_diff_vs_torch"] = err
    del sess
print(json.dumps(out, sort_keys=True))
