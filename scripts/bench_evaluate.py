#!/usr/bin/env python3
"""Helpers for scripts/bench_evaluate.sh: a synthetic COCO-style input and pycocotools' timing on it.

    bench_evaluate.py generate OUT_DIR [--images 5000] [--dets-per-image 100] [--categories 20] [--seed 0]
        writes OUT_DIR/gt.json (instances format) and OUT_DIR/dets.json (results format)
    bench_evaluate.py pycocotools GT DETS STATS_JSON
        runs COCO(), loadRes, evaluate, accumulate, summarize; prints the time of each step and writes
        {"stats": [12 numbers], "seconds": {...}} to STATS_JSON
    bench_evaluate.py compare A_JSON B_JSON
        prints the largest difference between pycocotools' 12 numbers and ours (evaluate --json)

The input: about 7 objects per image (1% crowd, sizes log-uniform from 8 to 400 px, areas slightly below
w*h as segments are), and per image exactly the requested number of detections: 3 jittered copies of most
objects (one of them often with a wrong category) and random false positives, with uniform scores.
"""
import contextlib
import io
import json
import sys
import time

import numpy as np


def generate(out, images=5000, dets_per_image=100, categories=20, seed=0):
    import os
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    W, H = 640, 480
    cats = [{"id": k + 1, "name": "class%d" % (k + 1), "supercategory": "thing"} for k in range(categories)]
    imgs, anns, dets = [], [], []
    ann_id = 1
    for i in range(images):
        image_id = i + 1
        imgs.append({"id": image_id, "width": W, "height": H, "file_name": "%012d.jpg" % image_id})
        n = rng.poisson(7)
        w = np.exp(rng.uniform(np.log(8), np.log(400), n))
        h = np.exp(rng.uniform(np.log(8), np.log(400), n))
        w, h = np.minimum(w, W - 1), np.minimum(h, H - 1)
        x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
        c = rng.integers(1, categories + 1, n)
        crowd = rng.random(n) < 0.01
        boxes = []
        for j in range(n):
            box = [round(float(x[j]), 2), round(float(y[j]), 2), round(float(w[j]), 2), round(float(h[j]), 2)]
            anns.append({"id": ann_id, "image_id": image_id, "category_id": int(c[j]), "bbox": box,
                         "area": round(box[2] * box[3] * float(rng.uniform(0.6, 1.0)), 2),
                         "iscrowd": int(crowd[j]), "segmentation": []})
            ann_id += 1
            boxes.append((box, int(c[j])))
        image_dets = []
        for box, cat in boxes:
            for _ in range(3):
                if len(image_dets) >= dets_per_image:
                    break
                bx, by, bw, bh = box
                s = rng.choice([0.03, 0.08, 0.2])
                jitter = rng.normal(0, s, 4)
                d = [bx + jitter[0] * bw, by + jitter[1] * bh, bw * np.exp(jitter[2]), bh * np.exp(jitter[3])]
                k = cat if rng.random() < 0.8 else int(rng.integers(1, categories + 1))
                image_dets.append((d, k))
        while len(image_dets) < dets_per_image:
            dw, dh = np.exp(rng.uniform(np.log(8), np.log(400), 2))
            dw, dh = min(dw, W - 1), min(dh, H - 1)
            image_dets.append(([rng.uniform(0, W - dw), rng.uniform(0, H - dh), dw, dh], int(rng.integers(1, categories + 1))))
        scores = rng.random(len(image_dets))
        for (d, k), s in zip(image_dets, scores):
            dets.append({"image_id": image_id, "category_id": k, "bbox": [round(float(v), 2) for v in d],
                         "score": round(float(s), 5)})
    with open(os.path.join(out, "gt.json"), "w") as f:
        json.dump({"images": imgs, "annotations": anns, "categories": cats}, f)
    with open(os.path.join(out, "dets.json"), "w") as f:
        json.dump(dets, f)
    print("generated %d images, %d objects, %d detections, %d categories in %s"
          % (len(imgs), len(anns), len(dets), categories, out))


def run_pycocotools(gt_path, dets_path, stats_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    seconds = {}
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        t1 = time.perf_counter()
        dt = gt.loadRes(dets_path)
        t2 = time.perf_counter()
        E = COCOeval(gt, dt, "bbox")
        E.evaluate()
        t3 = time.perf_counter()
        E.accumulate()
        t4 = time.perf_counter()
    E.summarize()
    t5 = time.perf_counter()
    seconds = {"load_gt": t1 - t0, "load_dets": t2 - t1, "evaluate": t3 - t2, "accumulate": t4 - t3,
               "summarize": t5 - t4, "total": t5 - t0}
    print("pycocotools: " + ", ".join("%s %.2f s" % kv for kv in seconds.items()))
    with open(stats_path, "w") as f:
        json.dump({"stats": [float(s) for s in E.stats], "seconds": seconds}, f)


def compare(reference_path, ours_path):
    names = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
    ref = json.load(open(reference_path))["stats"]
    ours = json.load(open(ours_path))
    diff = max(abs(r - ours[n]) for r, n in zip(ref, names))
    print("largest difference from pycocotools over the 12 numbers: %.3g" % diff)
    return 0 if diff <= 1e-6 else 1


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "generate":
        import argparse
        p = argparse.ArgumentParser()
        p.add_argument("out")
        p.add_argument("--images", type=int, default=5000)
        p.add_argument("--dets-per-image", type=int, default=100)
        p.add_argument("--categories", type=int, default=20)
        p.add_argument("--seed", type=int, default=0)
        a = p.parse_args(sys.argv[2:])
        generate(a.out, a.images, a.dets_per_image, a.categories, a.seed)
    elif command == "pycocotools":
        run_pycocotools(*sys.argv[2:5])
    elif command == "compare":
        sys.exit(compare(*sys.argv[2:4]))
    else:
        print(__doc__)
        sys.exit(2)
