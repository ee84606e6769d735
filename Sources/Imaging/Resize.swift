/// Bilinear resampling with PyTorch's convention for
/// `F.interpolate(x, size=(dstH, dstW), mode="bilinear", align_corners=False, antialias=False)`:
///
///     scale = Float(inSize) / Float(outSize)
///     src   = max(scale * (Float(out) + 0.5) - 0.5, 0)
///     i0    = min(Int(src), inSize - 1),  i1 = min(i0 + 1, inSize - 1)
///     l1    = src - Float(i0),            l0 = 1 - l1
///
/// and each output is `(x[y0,x0]*w0 + x[y0,x1]*w1) * h0 + (x[y1,x0]*w0 + x[y1,x1]*w1) * h1`, computed in Float
/// in the same order as PyTorch's CPU kernel. Downsampling does not low-pass filter (antialias=False).
struct LinearTaps {
    var index0: [Int]
    var index1: [Int]
    var weight0: [Float]
    var weight1: [Float]

    init(inputSize: Int, outputSize: Int) {
        let scale = Float(inputSize) / Float(outputSize)
        index0 = [Int](repeating: 0, count: outputSize)
        index1 = [Int](repeating: 0, count: outputSize)
        weight0 = [Float](repeating: 0, count: outputSize)
        weight1 = [Float](repeating: 0, count: outputSize)
        for o in 0..<outputSize {
            let source = max(scale * (Float(o) + 0.5) - 0.5, 0)
            let i0 = min(Int(source), inputSize - 1)
            let lambda1 = min(max(source - Float(i0), 0), 1)
            index0[o] = i0
            index1[o] = i0 < inputSize - 1 ? i0 + 1 : i0
            weight1[o] = lambda1
            weight0[o] = 1 - lambda1
        }
    }
}

/// Resizes a planar float image with bilinear interpolation, matching PyTorch's
/// `F.interpolate(mode="bilinear", align_corners=False, antialias=False)` (see `LinearTaps`).
///
///     // src: (channels, srcH, srcW), dst: (channels, dstH, dstW), both contiguous
///
/// A pointer-level kernel: all sizes must be positive and the buffers must not overlap (checked with
/// preconditions; callers validate user input first).
public func resizeBilinearPlanar(
    src: UnsafePointer<Float>, channels: Int, srcH: Int, srcW: Int,
    dst: UnsafeMutablePointer<Float>, dstH: Int, dstW: Int
) {
    precondition(
        channels > 0 && srcH > 0 && srcW > 0 && dstH > 0 && dstW > 0,
        "resizeBilinearPlanar: sizes must be positive (\(channels)x\(srcH)x\(srcW) -> \(dstH)x\(dstW))")
    let rows = LinearTaps(inputSize: srcH, outputSize: dstH)
    let cols = LinearTaps(inputSize: srcW, outputSize: dstW)
    cols.index0.withUnsafeBufferPointer { cx0 in
        cols.index1.withUnsafeBufferPointer { cx1 in
            cols.weight0.withUnsafeBufferPointer { cw0 in
                cols.weight1.withUnsafeBufferPointer { cw1 in
                    for c in 0..<channels {
                        let plane = src + c * srcH * srcW
                        let outPlane = dst + c * dstH * dstW
                        for oy in 0..<dstH {
                            let r0 = plane + rows.index0[oy] * srcW
                            let r1 = plane + rows.index1[oy] * srcW
                            let h0 = rows.weight0[oy], h1 = rows.weight1[oy]
                            let out = outPlane + oy * dstW
                            for ox in 0..<dstW {
                                let x0 = cx0[ox], x1 = cx1[ox]
                                let w0 = cw0[ox], w1 = cw1[ox]
                                let top = r0[x0] * w0 + r0[x1] * w1
                                let bottom = r1[x0] * w0 + r1[x1] * w1
                                out[ox] = top * h0 + bottom * h1
                            }
                        }
                    }
                }
            }
        }
    }
}

extension RGBImage {
    /// A copy resized to `width` x `height` with bilinear interpolation, using the sampling convention of
    /// PyTorch's `F.interpolate(mode="bilinear", align_corners=False, antialias=False)` on float data: each
    /// channel is interpolated in Float and rounded to the nearest integer (halves away from zero) at the end.
    ///
    /// - Throws: `ImageError(.invalidArgument)` when either size is not positive, or this image is empty.
    public func resizedBilinear(width newWidth: Int, height newHeight: Int) throws -> RGBImage {
        guard newWidth > 0, newHeight > 0 else {
            throw ImageError(.invalidArgument, file: "resize", "target size \(newWidth)x\(newHeight) must be positive")
        }
        guard width > 0, height > 0 else {
            throw ImageError(.invalidArgument, file: "resize", "cannot resize an empty \(width)x\(height) image")
        }
        guard newWidth <= 1 << 24, newHeight <= 1 << 24, newWidth * newHeight <= 1 << 32 else {
            throw ImageError(
                .invalidArgument, file: "resize", "target size \(newWidth)x\(newHeight) is unreasonably large")
        }
        let rows = LinearTaps(inputSize: height, outputSize: newHeight)
        let cols = LinearTaps(inputSize: width, outputSize: newWidth)
        let srcStride = width * 3
        var result = RGBImage(width: newWidth, height: newHeight)
        pixels.withUnsafeBufferPointer { srcBuffer in
            result.pixels.withUnsafeMutableBufferPointer { dstBuffer in
                cols.index0.withUnsafeBufferPointer { cx0 in
                    cols.index1.withUnsafeBufferPointer { cx1 in
                        cols.weight0.withUnsafeBufferPointer { cw0 in
                            cols.weight1.withUnsafeBufferPointer { cw1 in
                                let src = srcBuffer.baseAddress!
                                let dst = dstBuffer.baseAddress!
                                for oy in 0..<newHeight {
                                    let r0 = src + rows.index0[oy] * srcStride
                                    let r1 = src + rows.index1[oy] * srcStride
                                    let h0 = rows.weight0[oy], h1 = rows.weight1[oy]
                                    var out = dst + oy * newWidth * 3
                                    for ox in 0..<newWidth {
                                        let x0 = cx0[ox] * 3, x1 = cx1[ox] * 3
                                        let w0 = cw0[ox], w1 = cw1[ox]
                                        @inline(__always) func channel(_ c: Int) -> UInt8 {
                                            let top = Float(r0[x0 + c]) * w0 + Float(r0[x1 + c]) * w1
                                            let bottom = Float(r1[x0 + c]) * w0 + Float(r1[x1 + c]) * w1
                                            // The value is within 0...255 (a convex combination), so adding
                                            // 0.5 and truncating rounds halves away from zero; the clamp only
                                            // guards float noise.
                                            return UInt8(min(max(top * h0 + bottom * h1 + 0.5, 0), 255))
                                        }
                                        out[0] = channel(0)
                                        out[1] = channel(1)
                                        out[2] = channel(2)
                                        out += 3
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return result
    }
}
