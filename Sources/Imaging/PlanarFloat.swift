/// Conversion between interleaved 8-bit RGB and the planar float layout a network consumes.
extension RGBImage {
    /// The image as `(3, height, width)` floats: `(pixel * scale - mean[c]) / std[c]`.
    ///
    /// With the defaults the values are in 0...1; torchvision's ImageNet normalisation is
    /// `mean: (0.485, 0.456, 0.406), std: (0.229, 0.224, 0.225)`.
    public func planarFloats(
        scale: Float = 1.0 / 255, mean: (Float, Float, Float) = (0, 0, 0),
        std: (Float, Float, Float) = (1, 1, 1)
    ) -> [Float] {
        let count = width * height
        return [Float](unsafeUninitializedCapacity: 3 * count) { buffer, initialized in
            writePlanarFloats(into: buffer.baseAddress!, scale: scale, mean: mean, std: std)
            initialized = 3 * count
        }
    }

    /// Writes `planarFloats(scale:mean:std:)` into `dst`, which must hold `3 * width * height` floats.
    ///
    ///     // dst: (3, height, width)
    public func writePlanarFloats(
        into dst: UnsafeMutablePointer<Float>, scale: Float = 1.0 / 255,
        mean: (Float, Float, Float) = (0, 0, 0), std: (Float, Float, Float) = (1, 1, 1)
    ) {
        let count = width * height
        let means = [mean.0, mean.1, mean.2], stds = [std.0, std.1, std.2]
        pixels.withUnsafeBufferPointer { src in
            for c in 0..<3 {
                let plane = dst + c * count
                let m = means[c], inverse = 1 / stds[c]
                for i in 0..<count {
                    plane[i] = (Float(src[3 * i + c]) * scale - m) * inverse
                }
            }
        }
    }

    /// The inverse of `planarFloats`: reads `(3, height, width)` floats, undoes the normalisation
    /// (`(v * std[c] + mean[c]) / scale`), rounds and clamps to 0...255. Non-finite values become 0.
    ///
    ///     // src: (3, height, width)
    public init(
        planarFloats src: UnsafePointer<Float>, width: Int, height: Int, scale: Float = 1.0 / 255,
        mean: (Float, Float, Float) = (0, 0, 0), std: (Float, Float, Float) = (1, 1, 1)
    ) {
        self.init(width: width, height: height)
        let count = width * height
        let means = [mean.0, mean.1, mean.2], stds = [std.0, std.1, std.2]
        pixels.withUnsafeMutableBufferPointer { dst in
            for c in 0..<3 {
                let plane = src + c * count
                let m = means[c], s = stds[c]
                for i in 0..<count {
                    let v = ((plane[i] * s + m) / scale).rounded()
                    dst[3 * i + c] = v.isFinite ? UInt8(min(max(v, 0), 255)) : 0
                }
            }
        }
    }
}
