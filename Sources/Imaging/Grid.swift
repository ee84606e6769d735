/// Lays out images in a grid (e.g. a contact sheet of detections): cells are as large as the largest image,
/// images are centred in their cells, rows are filled left to right. `columns` below 1 is treated as 1;
/// an empty list gives a 1x1 background image.
public func gridOfImages(
    _ images: [RGBImage], columns: Int, spacing: Int = 4,
    background: RGBColor = (255, 255, 255)
) -> RGBImage {
    guard !images.isEmpty else { return RGBImage(width: 1, height: 1, fill: background) }
    let columns = min(max(columns, 1), images.count)
    let rows = (images.count + columns - 1) / columns
    let gap = max(spacing, 0)
    let cellWidth = images.map(\.width).max()!, cellHeight = images.map(\.height).max()!
    var sheet = RGBImage(
        width: max(1, columns * cellWidth + (columns + 1) * gap),
        height: max(1, rows * cellHeight + (rows + 1) * gap), fill: background)
    for (i, image) in images.enumerated() {
        let x = gap + (i % columns) * (cellWidth + gap) + (cellWidth - image.width) / 2
        let y = gap + (i / columns) * (cellHeight + gap) + (cellHeight - image.height) / 2
        sheet.paste(image, x: x, y: y)
    }
    return sheet
}
