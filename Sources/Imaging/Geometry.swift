/// Crops, flips, padding and pasting: operations that move pixels without resampling.
extension RGBImage {
    /// The `width` x `height` region whose top-left corner is (x, y).
    ///
    /// - Throws: `ImageError(.invalidArgument)` when the size is negative or the region is not inside the image.
    public func cropped(x: Int, y: Int, width cropWidth: Int, height cropHeight: Int) throws -> RGBImage {
        guard cropWidth >= 0, cropHeight >= 0, x >= 0, y >= 0,
            cropWidth <= width - x, cropHeight <= height - y
        else {
            throw ImageError(
                .invalidArgument, file: "crop",
                "region x=\(x) y=\(y) width=\(cropWidth) height=\(cropHeight) is not inside the \(width)x\(height) "
                + "image"
            )
        }
        var result = RGBImage(width: cropWidth, height: cropHeight)
        let rowBytes = cropWidth * 3
        guard rowBytes > 0 else { return result }
        pixels.withUnsafeBufferPointer { src in
            result.pixels.withUnsafeMutableBufferPointer { dst in
                for row in 0..<cropHeight {
                    let from = src.baseAddress! + ((y + row) * width + x) * 3
                    (dst.baseAddress! + row * rowBytes).update(from: from, count: rowBytes)
                }
            }
        }
        return result
    }

    /// A mirror image (left and right swapped).
    public func flippedHorizontally() -> RGBImage {
        var result = self
        let w = width
        result.pixels.withUnsafeMutableBufferPointer { p in
            guard let base = p.baseAddress else { return }
            for row in 0..<height {
                var left = base + row * w * 3
                var right = left + (w - 1) * 3
                while left < right {
                    for c in 0..<3 { swap(&left[c], &right[c]) }
                    left += 3
                    right -= 3
                }
            }
        }
        return result
    }

    /// An upside-down copy (top and bottom rows swapped).
    public func flippedVertically() -> RGBImage {
        var result = self
        let rowBytes = width * 3
        guard rowBytes > 0 else { return result }
        pixels.withUnsafeBufferPointer { src in
            result.pixels.withUnsafeMutableBufferPointer { dst in
                for row in 0..<height {
                    (dst.baseAddress! + row * rowBytes)
                        .update(from: src.baseAddress! + (height - 1 - row) * rowBytes, count: rowBytes)
                }
            }
        }
        return result
    }

    /// A copy with borders of the given widths added on each side, filled with `fill`.
    ///
    /// - Throws: `ImageError(.invalidArgument)` when a border is negative.
    public func padded(
        top: Int = 0, left: Int = 0, bottom: Int = 0, right: Int = 0,
        fill: RGBColor = (0, 0, 0)
    ) throws -> RGBImage {
        guard top >= 0, left >= 0, bottom >= 0, right >= 0 else {
            throw ImageError(
                .invalidArgument, file: "pad",
                "borders must not be negative (top \(top), left \(left), bottom \(bottom), right \(right))")
        }
        var result = RGBImage(width: width + left + right, height: height + top + bottom, fill: fill)
        result.paste(self, x: left, y: top)
        return result
    }

    /// Copies `image` into this one with its top-left corner at (x, y). Parts falling outside are clipped.
    public mutating func paste(_ image: RGBImage, x: Int, y: Int) {
        let x0 = max(x, 0), y0 = max(y, 0)
        let x1 = min(width, x.clampedAdd(image.width)), y1 = min(height, y.clampedAdd(image.height))
        guard x0 < x1, y0 < y1 else { return }
        let dstWidth = width
        let count = (x1 - x0) * 3
        image.pixels.withUnsafeBufferPointer { src in
            pixels.withUnsafeMutableBufferPointer { dst in
                for row in y0..<y1 {
                    let from = src.baseAddress! + ((row - y) * image.width + (x0 - x)) * 3
                    (dst.baseAddress! + (row * dstWidth + x0) * 3).update(from: from, count: count)
                }
            }
        }
    }
}

extension Int {
    /// `self + other`, saturating at Int.min / Int.max instead of trapping.
    @usableFromInline
    func clampedAdd(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }
}
