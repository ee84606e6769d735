import Foundation

/// EXIF orientation (tag 0x0112 of a JPEG's APP1 "Exif" segment): how a camera that stored the pixels
/// sideways or mirrored says they should be shown. `ImageIO.decode` applies it the way PIL's
/// `ImageOps.exif_transpose` does, so phone photos are detected and drawn upright; `ImageIO.appliesEXIFOrientation
/// = false` (the commands' `--ignore-exif-orientation`) keeps the stored order.
public enum EXIFOrientation {
    /// The orientation value (1...8) of a JPEG file's first EXIF segment, or nil when there is none or it is
    /// malformed (a malformed EXIF block never stops a decode: the pixels are then used as stored).
    public static func value(inJPEG data: Data) -> Int? {
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Int? in
            let b = raw.bindMemory(to: UInt8.self)
            let n = b.count
            guard n >= 4, b[0] == 0xFF, b[1] == 0xD8 else { return nil }
            var i = 2
            while i + 4 <= n {
                guard b[i] == 0xFF else { return nil }
                let marker = b[i + 1]
                if marker == 0xFF { i += 1; continue }  // fill byte
                if marker == 0xD8 || (0xD0...0xD7).contains(marker) || marker == 0x01 { i += 2; continue }
                if marker == 0xDA || marker == 0xD9 { return nil }  // scan data / end: no EXIF before it
                let length = Int(b[i + 2]) << 8 | Int(b[i + 3])
                guard length >= 2, i + 2 + length <= n else { return nil }
                let start = i + 4, end = i + 2 + length
                if marker == 0xE1, end - start >= 14,
                    b[start] == 0x45, b[start + 1] == 0x78, b[start + 2] == 0x69, b[start + 3] == 0x66,
                    b[start + 4] == 0, b[start + 5] == 0
                {
                    return orientation(tiff: UnsafeBufferPointer(rebasing: b[(start + 6)..<end]))
                }
                i = end
            }
            return nil
        }
    }

    /// Tag 0x0112 of IFD0 in a TIFF block (little- or big-endian).
    static func orientation(tiff t: UnsafeBufferPointer<UInt8>) -> Int? {
        guard t.count >= 8 else { return nil }
        let little: Bool
        switch (t[0], t[1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return nil
        }
        func u16(_ o: Int) -> Int? {
            guard o >= 0, o + 2 <= t.count else { return nil }
            return little ? Int(t[o]) | Int(t[o + 1]) << 8 : Int(t[o]) << 8 | Int(t[o + 1])
        }
        func u32(_ o: Int) -> Int? {
            guard let a = u16(o), let c = u16(o + 2) else { return nil }
            return little ? a | c << 16 : a << 16 | c
        }
        guard u16(2) == 42, let ifd = u32(4), let count = u16(ifd), count <= 1000 else { return nil }
        for k in 0..<count {
            let entry = ifd + 2 + 12 * k
            guard let tag = u16(entry) else { return nil }
            if tag == 0x0112 {
                guard u16(entry + 2) == 3, let value = u16(entry + 8), (1...8).contains(value) else { return nil }
                return value
            }
        }
        return nil
    }

    /// `image` shown upright for an orientation value (PIL's exif_transpose: 2 mirror, 3 rotate 180, 4 flip,
    /// 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise).
    public static func apply(_ value: Int, to image: RGBImage) -> RGBImage {
        let w = image.width, h = image.height
        switch value {
        case 2: return image.flippedHorizontally()
        case 3: return image.flippedHorizontally().flippedVertically()
        case 4: return image.flippedVertically()
        case 5, 6, 7, 8:
            // Output is h wide and w tall; out(x, y) = in(sx, sy).
            var out = RGBImage(width: h, height: w)
            image.pixels.withUnsafeBufferPointer { src in
                out.pixels.withUnsafeMutableBufferPointer { dst in
                    for y in 0..<w {
                        for x in 0..<h {
                            let (sx, sy): (Int, Int)
                            switch value {
                            case 5: (sx, sy) = (y, x)  // transpose
                            case 6: (sx, sy) = (y, h - 1 - x)  // rotate 90 clockwise
                            case 7: (sx, sy) = (w - 1 - y, h - 1 - x)  // transverse
                            default: (sx, sy) = (w - 1 - y, x)  // rotate 90 counter-clockwise
                            }
                            let o = (y * h + x) * 3, i = (sy * w + sx) * 3
                            dst[o] = src[i]; dst[o + 1] = src[i + 1]; dst[o + 2] = src[i + 2]
                        }
                    }
                }
            }
            return out
        default: return image
        }
    }
}
