import Foundation
import Engine

/// RoI max pooling (Fast R-CNN; torchvision's `roi_pool`): features (N, C, H, W), rois (R, 5)
/// [batchIndex, x1, y1, x2, y2] in image pixels -> (R, C, outputHeight, outputWidth).
///
/// Each RoI is snapped to the feature grid: start = round(x1 * spatialScale), end = round(x2 * spatialScale)
/// (round half away from zero, C's `round`), size = max(end - start + 1, 1). Bin (i, j) covers rows
/// [floor(i * h / P), ceil((i + 1) * h / P)) + start (likewise columns), clipped to the map; its value is the
/// maximum there (the first maximum in row-major order wins ties), or 0 for an empty bin. The gradient of
/// each output goes to the input element that was its maximum (none from empty bins); RoIs get no gradient.
///
/// `channelsLast`: the output is (R, outputHeight, outputWidth, C) instead, for the channels-last inference
/// path; not recorded (no gradient).
public func roiPool(
    _ features: Tensor, rois: Tensor, outputSize: (height: Int, width: Int),
    spatialScale: Float, channelsLast: Bool = false
) -> Tensor {
    let batch = validateRoIInputs(features, rois, outputSize: outputSize, "roiPool", positions: "argmax indices")
    let g = RoIPoolKernels.Geometry(
        n: features.shape[0], c: features.shape[1], h: features.shape[2],
        w: features.shape[3], r: rois.shape[0], ph: outputSize.height,
        pw: outputSize.width, scale: spatialScale)
    let y = Tensor(uninitialized: channelsLast ? [g.r, g.ph, g.pw, g.c] : [g.r, g.c, g.ph, g.pw])
    let needsGrad = GradMode.isEnabled && features.requiresGrad && !channelsLast
    let argmax = needsGrad ? RoIArgmax(count: y.count) : nil
    RoIPoolKernels.forward(features.data, rois.data, batch, g, y.data, argmax?.p, channelsLast: channelsLast)
    guard let argmax else { return y }
    return Tensor.record(y, inputs: [features]) { gy in
        let gx = Tensor(zeros: features.shape)
        RoIPoolKernels.backward(gy.data, argmax.p, batch, g, gx.data)
        return [gx]
    }
}

/// `roiPool` of (R, 4) boxes with the image index of each box.
public func roiPool(
    _ features: Tensor, boxes: Tensor, batchIndices: [Int], outputSize: (height: Int, width: Int),
    spatialScale: Float
) -> Tensor {
    roiPool(
        features, rois: makeRoIs(boxes: boxes, batchIndices: batchIndices), outputSize: outputSize,
        spatialScale: spatialScale)
}

/// Owns the argmax indices (into one H*W plane, -1 for empty bins) until the backward is released.
final class RoIArgmax {
    let p: UnsafeMutablePointer<Int32>
    init(count: Int) { p = .allocate(capacity: max(count, 1)) }
    deinit { p.deallocate() }
}

enum RoIPoolKernels {
    struct Geometry {
        let n, c, h, w, r, ph, pw: Int
        let scale: Float
    }

    /// The feature rows (or columns) [start, end) of each of `pooled` bins of one RoI side.
    /// lo, hi: RoI edge coordinates in image pixels; size: the feature map's extent along this side.
    @inline(__always)
    static func gridBins(
        _ lo: Float, _ hi: Float, scale: Float, pooled: Int, size: Int,
        _ start: UnsafeMutablePointer<Int>, _ end: UnsafeMutablePointer<Int>
    ) {
        let roiStart = Int((lo * scale).rounded(.toNearestOrAwayFromZero))
        let roiEnd = Int((hi * scale).rounded(.toNearestOrAwayFromZero))
        let roiSize = max(roiEnd - roiStart + 1, 1)
        let bin = Float(roiSize) / Float(pooled)
        for p in 0..<pooled {
            let s = Int((Float(p) * bin).rounded(.down)), e = Int((Float(p + 1) * bin).rounded(.up))
            start[p] = min(max(s + roiStart, 0), size)
            end[p] = min(max(e + roiStart, 0), size)
        }
    }

    /// The bins of every RoI: for RoI r, rows [hs, he) and columns [ws, we) of bin (i, j) are
    /// t[r * stride + i], t[r * stride + ph + i], t[r * stride + 2 ph + j], t[r * stride + 2 ph + pw + j].
    static func allBins(_ rois: UnsafePointer<Float>, _ g: Geometry) -> [Int] {
        let stride = 2 * (g.ph + g.pw)
        var t = [Int](repeating: 0, count: g.r * stride)
        t.withUnsafeMutableBufferPointer { b in
            for r in 0..<g.r {
                let roi = rois + 5 * r, hs = b.baseAddress! + r * stride
                gridBins(roi[2], roi[4], scale: g.scale, pooled: g.ph, size: g.h, hs, hs + g.ph)
                gridBins(roi[1], roi[3], scale: g.scale, pooled: g.pw, size: g.w, hs + 2 * g.ph, hs + 2 * g.ph + g.pw)
            }
        }
        return t
    }

    /// Threads take ranges of channels and walk groups of 16 channels over all RoIs, so that the feature
    /// planes they read (or accumulate into) stay in cache.
    static let channelGroup = 16

    /// x: (N, C, H, W), rois: (R, 5), y and argmax (when non-nil): (R, C, PH, PW), or y (R, PH, PW, C) when
    /// `channelsLast` (then argmax must be nil).
    static func forward(
        _ x: UnsafePointer<Float>, _ rois: UnsafePointer<Float>, _ batch: [Int], _ g: Geometry,
        _ y: UnsafeMutablePointer<Float>, _ argmax: UnsafeMutablePointer<Int32>?, channelsLast: Bool = false
    ) {
        let plane = g.h * g.w, bins = g.ph * g.pw, stride = 2 * (g.ph + g.pw), width = g.w
        let table = allBins(rois, g)
        table.withUnsafeBufferPointer { tb in
            let t = tb.baseAddress!
            Threading.parallelChunks(g.c, minPerThread: channelGroup) { channels in
                for c0 in Swift.stride(from: channels.lowerBound, to: channels.upperBound, by: channelGroup) {
                    for r in 0..<g.r {
                        let hs = t + r * stride, he = hs + g.ph, ws = he + g.ph, we = ws + g.pw
                        let group = c0..<min(c0 + channelGroup, channels.upperBound)
                        /// The maximum of bin (i, j) of channel c and its position (0 and -1 for an empty bin).
                        @inline(__always) func pool(_ c: Int, _ i: Int, _ j: Int) -> (Float, Int) {
                            if he[i] <= hs[i] || we[j] <= ws[j] { return (0, -1) }
                            let src = x + (batch[r] * g.c + c) * plane
                            var best = -Float.greatestFiniteMagnitude, bestIndex = -1
                            for yy in hs[i]..<he[i] {
                                let row = yy &* width
                                for xx in ws[j]..<we[j] {
                                    let v = src[row &+ xx]
                                    let better = v > best
                                    best = better ? v : best
                                    bestIndex = better ? row &+ xx : bestIndex
                                }
                            }
                            return (best, bestIndex)
                        }
                        if channelsLast {
                            // Bin by bin, the group's channels side by side: one contiguous run per bin (channel
                            // by channel the writes would be C floats apart, on a few cache sets).
                            for i in 0..<g.ph {
                                for j in 0..<g.pw {
                                    let out = y + (r * bins + i * g.pw + j) * g.c
                                    for c in group { out[c] = pool(c, i, j).0 }
                                }
                            }
                            continue
                        }
                        for c in group {
                            let out = y + (r * g.c + c) * bins
                            for i in 0..<g.ph {
                                for j in 0..<g.pw {
                                    let (best, bestIndex) = pool(c, i, j)
                                    out[i * g.pw + j] = best
                                    argmax?[(r * g.c + c) * bins + i * g.pw + j] = Int32(truncatingIfNeeded: bestIndex)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// gy and argmax: (R, C, PH, PW), gx: (N, C, H, W) accumulated into. Threads own disjoint channel ranges,
    /// so no two threads write the same plane.
    static func backward(
        _ gy: UnsafePointer<Float>, _ argmax: UnsafePointer<Int32>, _ batch: [Int], _ g: Geometry,
        _ gx: UnsafeMutablePointer<Float>
    ) {
        let plane = g.h * g.w, bins = g.ph * g.pw
        Threading.parallelChunks(g.c, minPerThread: channelGroup) { channels in
            for c0 in stride(from: channels.lowerBound, to: channels.upperBound, by: channelGroup) {
                for r in 0..<g.r {
                    for c in c0..<min(c0 + channelGroup, channels.upperBound) {
                        let dst = gx + (batch[r] * g.c + c) * plane
                        let src = gy + (r * g.c + c) * bins, arg = argmax + (r * g.c + c) * bins
                        for k in 0..<bins where arg[k] >= 0 { dst[Int(arg[k])] += src[k] }
                    }
                }
            }
        }
    }
}
