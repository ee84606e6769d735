import Foundation
import Engine

/// RoIAlign (torchvision's `roi_align`): features (N, C, H, W), rois (R, 5) [batchIndex, x1, y1, x2, y2] in
/// image pixels -> (R, C, outputHeight, outputWidth), each bin the average of bilinear samples.
///
/// - `aligned` (default true): continuous coordinates x * spatialScale - 0.5, so pixel centres sit at
///   integers; false is the original RoIAlign (no shift, RoI at least 1x1).
/// - `samplingRatio` <= 0 (default): adaptive, ceil(roiHeight / outputHeight) x ceil(roiWidth / outputWidth)
///   samples per bin, at the centres of an even grid inside the bin; > 0: that many per axis.
/// - Bilinear interpolation as torchvision's CPU kernel: a sample with y < -1, y > H, x < -1 or x > W is 0;
///   otherwise coordinates below 0 are clamped to 0, and a sample at or past the last row/column reads that
///   row/column.
///
/// The backward pass scatters each output gradient / count back through the bilinear weights (the
/// transpose of the forward map); RoIs get no gradient.
///
/// `channelsLast`: the output is (R, outputHeight, outputWidth, C) instead, for the channels-last inference
/// path; not recorded (no gradient).
public func roiAlign(
    _ features: Tensor, rois: Tensor, outputSize: (height: Int, width: Int), spatialScale: Float,
    samplingRatio: Int = 0, aligned: Bool = true, channelsLast: Bool = false
) -> Tensor {
    let batch = validateRoIInputs(features, rois, outputSize: outputSize, "roiAlign", positions: "sample positions")
    let g = RoIAlignKernels.Geometry(
        n: features.shape[0], c: features.shape[1], h: features.shape[2],
        w: features.shape[3], r: rois.shape[0], ph: outputSize.height,
        pw: outputSize.width, scale: spatialScale, samplingRatio: samplingRatio,
        aligned: aligned)
    if channelsLast {
        let y = Tensor(uninitialized: [g.r, g.ph, g.pw, g.c])
        RoIAlignKernels.forward(features.data, rois.data, batch, g, y.data, channelsLast: true)
        return y
    }
    let y = Tensor(uninitialized: [g.r, g.c, g.ph, g.pw])
    let roiTable = rois.copy()  // the backward recomputes the sampling plans from the RoIs of this call
    RoIAlignKernels.forward(features.data, roiTable.data, batch, g, y.data)
    return Tensor.record(y, inputs: [features]) { gy in
        let gx = Tensor(zeros: features.shape)
        RoIAlignKernels.backward(gy.data, roiTable.data, batch, g, gx.data)
        return [gx]
    }
}

/// `roiAlign` of (R, 4) boxes with the image index of each box.
public func roiAlign(
    _ features: Tensor, boxes: Tensor, batchIndices: [Int], outputSize: (height: Int, width: Int),
    spatialScale: Float, samplingRatio: Int = 0, aligned: Bool = true
) -> Tensor {
    roiAlign(
        features, rois: makeRoIs(boxes: boxes, batchIndices: batchIndices), outputSize: outputSize,
        spatialScale: spatialScale, samplingRatio: samplingRatio, aligned: aligned)
}

enum RoIAlignKernels {
    struct Geometry {
        let n, c, h, w, r, ph, pw: Int
        let scale: Float
        let samplingRatio: Int
        let aligned: Bool
    }

    /// One bilinear sample: four positions in an H*W plane and their weights (all weights 0 for a sample
    /// outside the map).
    struct Sample {
        var p1: Int32 = 0, p2: Int32 = 0, p3: Int32 = 0, p4: Int32 = 0
        var w1: Float = 0, w2: Float = 0, w3: Float = 0, w4: Float = 0
    }

    /// The sampling plan of one RoI: `perBin` samples for each of the PH*PW bins, bin-major.
    struct Plan {
        var samples: [Sample]
        let perBin: Int
        /// The divisor of each bin's sum: max(gridH * gridW, 1) as torchvision.
        let count: Float
    }

    /// roi: [batchIndex, x1, y1, x2, y2].
    static func plan(_ roi: UnsafePointer<Float>, _ g: Geometry) -> Plan {
        let offset: Float = g.aligned ? 0.5 : 0
        let startW = roi[1] * g.scale - offset, startH = roi[2] * g.scale - offset
        let endW = roi[3] * g.scale - offset, endH = roi[4] * g.scale - offset
        var roiW = endW - startW, roiH = endH - startH
        if !g.aligned { roiW = max(roiW, 1); roiH = max(roiH, 1) }
        let binH = roiH / Float(g.ph), binW = roiW / Float(g.pw)
        let gridH = g.samplingRatio > 0 ? g.samplingRatio : Int((roiH / Float(g.ph)).rounded(.up))
        let gridW = g.samplingRatio > 0 ? g.samplingRatio : Int((roiW / Float(g.pw)).rounded(.up))
        let count = Float(max(gridH * gridW, 1))
        // A RoI with negative extent (x2 < x1 when aligned) has no samples: its bins are 0.
        let nh = max(gridH, 0), nw = max(gridW, 0)
        var samples = [Sample](repeating: Sample(), count: g.ph * g.pw * nh * nw)
        let height = Float(g.h), width = Float(g.w)
        var k = 0
        for ph in 0..<g.ph {
            for pw in 0..<g.pw {
                for iy in 0..<nh {
                    let yy = startH + Float(ph) * binH + (Float(iy) + 0.5) * binH / Float(nh)
                    for ix in 0..<nw {
                        let xx = startW + Float(pw) * binW + (Float(ix) + 0.5) * binW / Float(nw)
                        samples[k] = bilinear(y: yy, x: xx, height: g.h, width: g.w, fh: height, fw: width)
                        k += 1
                    }
                }
            }
        }
        return Plan(samples: samples, perBin: nh * nw, count: count)
    }

    @inline(__always)
    static func bilinear(y yIn: Float, x xIn: Float, height: Int, width: Int, fh: Float, fw: Float) -> Sample {
        if yIn < -1 || yIn > fh || xIn < -1 || xIn > fw { return Sample() }
        var y = max(yIn, 0), x = max(xIn, 0)
        var yLow = Int(y), xLow = Int(x), yHigh: Int, xHigh: Int
        if yLow >= height - 1 { yLow = height - 1; yHigh = yLow; y = Float(yLow) } else { yHigh = yLow + 1 }
        if xLow >= width - 1 { xLow = width - 1; xHigh = xLow; x = Float(xLow) } else { xHigh = xLow + 1 }
        let ly = y - Float(yLow), lx = x - Float(xLow), hy = 1 - ly, hx = 1 - lx
        return Sample(
            p1: Int32(yLow * width + xLow), p2: Int32(yLow * width + xHigh),
            p3: Int32(yHigh * width + xLow), p4: Int32(yHigh * width + xHigh),
            w1: hy * hx, w2: hy * lx, w3: ly * hx, w4: ly * lx)
    }

    /// RoIs are processed in blocks whose sampling plans are computed once (in parallel); within a block,
    /// threads take ranges of channels, and each thread walks small groups of channels over all the block's
    /// RoIs, so that the feature planes it reads (or, backward, accumulates into) stay in cache.
    static let roiBlock = 64
    static let channelGroup = 16

    /// Plans of RoIs lo..<hi, computed in parallel.
    static func plans(_ rois: UnsafePointer<Float>, _ lo: Int, _ hi: Int, _ g: Geometry) -> [Plan] {
        var out = [Plan?](repeating: nil, count: hi - lo)
        out.withUnsafeMutableBufferPointer { o in
            let base = o.baseAddress!
            Threading.parallelFor(hi - lo) { k in base[k] = plan(rois + 5 * (lo + k), g) }
        }
        return out.map { $0! }
    }

    /// Calls body(r, plan, channels) for every RoI and channel group, parallel over channel ranges.
    static func sweep(
        _ rois: UnsafePointer<Float>, _ g: Geometry,
        _ body: (Int, UnsafePointer<Sample>, Plan, Range<Int>) -> Void
    ) {
        for lo in stride(from: 0, to: g.r, by: roiBlock) {
            let hi = min(g.r, lo + roiBlock)
            let block = plans(rois, lo, hi, g)
            Threading.parallelChunks(g.c, minPerThread: channelGroup) { channels in
                for c0 in stride(from: channels.lowerBound, to: channels.upperBound, by: channelGroup) {
                    let group = c0..<min(c0 + channelGroup, channels.upperBound)
                    for r in lo..<hi {
                        let p = block[r - lo]
                        p.samples.withUnsafeBufferPointer { body(r, $0.baseAddress!, p, group) }
                    }
                }
            }
        }
    }

    /// x: (N, C, H, W), rois: (R, 5), y: (R, C, PH, PW), or (R, PH, PW, C) when `channelsLast`.
    static func forward(
        _ x: UnsafePointer<Float>, _ rois: UnsafePointer<Float>, _ batch: [Int], _ g: Geometry,
        _ y: UnsafeMutablePointer<Float>, channelsLast: Bool = false
    ) {
        let plane = g.h * g.w, bins = g.ph * g.pw
        sweep(rois, g) { r, s, p, channels in
            let perBin = p.perBin, count = p.count
            /// Bin b of channel c: the mean of its bilinear samples.
            @inline(__always) func bin(_ c: Int, _ b: Int) -> Float {
                let src = x + (batch[r] * g.c + c) * plane
                var acc: Float = 0
                for k in (b * perBin)..<((b + 1) * perBin) {
                    let q = s[k]
                    acc += q.w1 * src[Int(q.p1)] + q.w2 * src[Int(q.p2)] + q.w3 * src[Int(q.p3)] + q.w4 * src[Int(q.p4)]
                }
                return acc / count
            }
            if channelsLast {
                // Bin by bin, the channels side by side: contiguous writes (see RoIPoolKernels.forward).
                for b in 0..<bins {
                    let out = y + (r * bins + b) * g.c
                    for c in channels { out[c] = bin(c, b) }
                }
                return
            }
            for c in channels {
                let out = y + (r * g.c + c) * bins
                for b in 0..<bins { out[b] = bin(c, b) }
            }
        }
    }

    /// gy: (R, C, PH, PW), rois: (R, 5), gx: (N, C, H, W) accumulated into. Threads own disjoint channel
    /// ranges, so no two threads write the same plane.
    static func backward(
        _ gy: UnsafePointer<Float>, _ rois: UnsafePointer<Float>, _ batch: [Int], _ g: Geometry,
        _ gx: UnsafeMutablePointer<Float>
    ) {
        let plane = g.h * g.w, bins = g.ph * g.pw
        sweep(rois, g) { r, s, p, channels in
            let perBin = p.perBin, count = p.count
            for c in channels {
                let dst = gx + (batch[r] * g.c + c) * plane, src = gy + (r * g.c + c) * bins
                var k = 0
                for b in 0..<bins {
                    let gBin = src[b]
                    for _ in 0..<perBin {
                        let q = s[k]
                        dst[Int(q.p1)] += gBin * q.w1 / count
                        dst[Int(q.p2)] += gBin * q.w2 / count
                        dst[Int(q.p3)] += gBin * q.w3 / count
                        dst[Int(q.p4)] += gBin * q.w4 / count
                        k &+= 1
                    }
                }
            }
        }
    }
}
