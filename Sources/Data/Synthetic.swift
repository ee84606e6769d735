import Foundation
import Engine

/// A generated 10-class, 32x32 image set (CIFAR layout) for learning tests and demos: each class is a
/// distinct shape (disc, square, triangle, cross, ring, bars, diagonal, diamond, two dots, frame) with
/// random size, position, colour, background gradient and noise, so colour alone does not tell the class.
public enum SyntheticShapes {
    public static let classNames = [
        "disc", "square", "triangle", "cross", "ring", "bars", "diagonal", "diamond", "dots", "frame"
    ]

    public static func make(count: Int, seed: UInt64) -> CIFARDataset {
        var rng = SeededRNG(seed: seed)
        var pixels = [UInt8](repeating: 0, count: count * 3072)
        var labels: [Int] = []
        for k in 0..<count {
            let c = k % 10
            labels.append(c)
            let bg = (0..<3).map { _ in rng.uniform(40, 200) }
            let grad = (0..<3).map { _ in rng.uniform(-2, 2) }
            var fg = (0..<3).map { _ in rng.uniform(0, 255) }
            // Keep the shape visible against the background.
            if zip(fg, bg).map({ abs($0 - $1) }).max()! < 60 { fg[0] = bg[0] > 128 ? 10 : 245 }
            let cx = rng.uniform(11, 21), cy = rng.uniform(11, 21), r = rng.uniform(6, 10)
            for y in 0..<32 {
                for x in 0..<32 {
                    let dx = Float(x) - cx, dy = Float(y) - cy
                    let inside: Bool
                    switch c {
                    case 0: inside = dx * dx + dy * dy <= r * r
                    case 1: inside = abs(dx) <= r * 0.8 && abs(dy) <= r * 0.8
                    case 2: inside = dy <= r * 0.7 && dy >= -r * 0.9 && abs(dx) <= (dy + r * 0.9) * 0.6
                    case 3: inside = (abs(dx) <= r * 0.25 && abs(dy) <= r) || (abs(dy) <= r * 0.25 && abs(dx) <= r)
                    case 4: let d = (dx * dx + dy * dy).squareRoot(); inside = d <= r && d >= r * 0.6
                    case 5: inside = abs(dy) <= r && abs(dx) <= r && Int((dx + r) / (r * 0.4)) % 2 == 0
                    case 6: inside = abs(dx - dy) <= r * 0.3 && abs(dx) <= r
                    case 7: inside = abs(dx) + abs(dy) <= r
                    case 8:
                        inside =
                            (dx + r * 0.5) * (dx + r * 0.5) + dy * dy <= r * r * 0.16
                            || (dx - r * 0.5) * (dx - r * 0.5) + dy * dy <= r * r * 0.16
                    default: inside = max(abs(dx), abs(dy)) <= r && max(abs(dx), abs(dy)) >= r * 0.7
                    }
                    for ch in 0..<3 {
                        var v = inside ? fg[ch] : bg[ch] + grad[ch] * (Float(x) - 15.5)
                        v += rng.normal(std: 8)
                        pixels[k * 3072 + ch * 1024 + y * 32 + x] = UInt8(max(0, min(255, v.rounded())))
                    }
                }
            }
        }
        return CIFARDataset(pixels: pixels, labels: labels, numClasses: 10)
    }
}
