import Foundation

/// Colours: a few named ones, distinct colours per class / series index, and readable text on a background.
public enum Palette {
    public static let white: RGBColor = (255, 255, 255)
    public static let black: RGBColor = (0, 0, 0)
    public static let red: RGBColor = (214, 39, 40)
    public static let green: RGBColor = (44, 160, 44)
    public static let blue: RGBColor = (31, 119, 180)
    public static let gray: RGBColor = (127, 127, 127)

    /// Matplotlib's "tab10" colours: the first ten indices of `color(_:)`.
    public static let tab10: [RGBColor] = [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
        (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)
    ]

    /// A colour for class or series `index`, distinct from its neighbours: the ten tab10 colours, then hues
    /// spaced by the golden angle with alternating saturation / brightness. Deterministic; negative indices
    /// use their magnitude.
    public static func color(_ index: Int) -> RGBColor {
        let i = index == Int.min ? Int.max : abs(index)
        if i < tab10.count { return tab10[i] }
        let k = i - tab10.count
        let hue = (Double(k) * 0.618_033_988_749_895 + 0.11).truncatingRemainder(dividingBy: 1)
        let saturation = [0.85, 0.6, 0.95][k % 3]
        let value = [0.9, 0.75, 0.6][(k / 3) % 3]
        return hsv(hue: hue, saturation: saturation, value: value)
    }

    /// Black or white, whichever reads better on `background` (by Rec. 601 luma).
    public static func textColor(on background: RGBColor) -> RGBColor {
        let luma = 0.299 * Double(background.r) + 0.587 * Double(background.g) + 0.114 * Double(background.b)
        return luma > 150 ? black : white
    }

    /// HSV (each 0...1) to 8-bit RGB.
    public static func hsv(hue: Double, saturation: Double, value: Double) -> RGBColor {
        let h = (hue - floor(hue)) * 6
        let s = min(max(saturation, 0), 1), v = min(max(value, 0), 1)
        let sector = Int(h) % 6
        let f = h - floor(h)
        let p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f))
        let (r, g, b): (Double, Double, Double)
        switch sector {
        case 0: (r, g, b) = (v, t, p)
        case 1: (r, g, b) = (q, v, p)
        case 2: (r, g, b) = (p, v, t)
        case 3: (r, g, b) = (p, q, v)
        case 4: (r, g, b) = (t, p, v)
        default: (r, g, b) = (v, p, q)
        }
        return (UInt8((r * 255).rounded()), UInt8((g * 255).rounded()), UInt8((b * 255).rounded()))
    }
}
