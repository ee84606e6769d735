import Foundation
import FileSupport

// Turning results into text: a readable table for the terminal, JSON with the names the field uses, CSV,
// and the Markdown/CSV comparison of a batch. Everything here is a pure function from results to a String
// (`AtomicFile.write` puts one in a file).

// MARK: - One result

/// The terminal report: for COCO, pycocotools' 12 familiar lines and a per-category table; for VOC, the
/// per-class AP (one column per IoU threshold) and mAP, as py-faster-rcnn prints them (4 decimals).
public func renderTable(_ result: EvaluationResult) -> String {
    var out = ""
    switch result {
    case .coco(let e):
        out += "COCO box evaluation (pycocotools COCOeval semantics)\n"
        for (line, value) in zip(COCOSummary.pycocotoolsLines, e.summary.values) {
            out += " \(line) = \(String(format: "%0.3f", value))\n"
        }
        out += "\n"
        let header = ["category", "AP", "AP50", "AP75", "APs", "APm", "APl"]
        let rows = e.categories.indices.map { k -> [String] in
            let s = e.summary(category: k)
            return [e.categories[k].name]
                + [s.ap, s.ap50, s.ap75, s.apSmall, s.apMedium, s.apLarge].map { fraction($0, 3) }
        }
        out += textTable(header: header, rows: rows)
        out += "(-: no ground truth of that category or size; left out of the means)\n"
    case .voc(let list):
        let main = list[0]
        out += main.metric == .voc07 ? "Pascal VOC, VOC07 11-point AP" : "Pascal VOC, VOC2010+ area AP"
        out += " (py-faster-rcnn voc_eval semantics)\n"
        let header = ["class"] + list.map { "AP@\(threshold($0.iouThreshold))" } + ["objects", "detections"]
        var rows = main.classes.indices.map { k -> [String] in
            [main.classes[k].name] + list.map { fraction($0.classes[k].ap, 4) }
                + [String(main.classes[k].positives), String(main.classes[k].detections)]
        }
        rows.append(["mAP"] + list.map { fraction($0.mAP, 4) } + ["", ""])
        out += textTable(header: header, rows: rows, separatorBeforeLast: true)
        out += "(objects: not difficult; -: no such objects, left out of mAP)\n"
    }
    return out
}

/// JSON with the names the field uses: `{"metric": "coco", "AP": .., ..., "ARl": .., "per_class": {name: AP}}`
/// or `{"metric": "voc07"|"voc", "mAP": .., "per_class": {name: AP}, "iou": 0.5}` (plus `"at_iou"` with the
/// same two fields per extra threshold). Fractions in [0, 1]; -1 where undefined, as pycocotools.
public func renderJSON(_ result: EvaluationResult) -> String {
    var fields: [(String, String)] = [("metric", jsonString(result.metric.rawValue))]
    switch result {
    case .coco(let e):
        for (name, value) in zip(COCOSummary.names, e.summary.values) { fields.append((name, jsonNumber(value))) }
        fields.append(
            (
                "per_class",
                jsonObject(
                    e.categories.indices.map { (e.categories[$0].name, jsonNumber(e.averagePrecision(category: $0))) },
                    indent: 1)
            ))
    case .voc(let list):
        fields.append(("mAP", jsonNumber(list[0].mAP)))
        fields.append(("per_class", jsonObject(list[0].classes.map { ($0.name, jsonNumber($0.ap)) }, indent: 1)))
        fields.append(("iou", jsonNumber(list[0].iouThreshold)))
        if list.count > 1 {
            let extra = list.dropFirst().map { e -> (String, String) in
                (
                    threshold(e.iouThreshold),
                    jsonObject(
                        [
                            ("mAP", jsonNumber(e.mAP)),
                            ("per_class", jsonObject(e.classes.map { ($0.name, jsonNumber($0.ap)) }, indent: 3))
                        ], indent: 2)
                )
            }
            fields.append(("at_iou", jsonObject(extra, indent: 1)))
        }
    }
    return jsonObject(fields, indent: 0) + "\n"
}

/// CSV: for COCO one row per category with all 12 numbers, after an "all" row with the overall 12; for VOC
/// one row per class with its AP at each threshold, objects and detections, after an "mAP" row.
public func renderCSV(_ result: EvaluationResult) -> String {
    var lines: [[String]] = []
    switch result {
    case .coco(let e):
        lines.append(["category_id", "category"] + COCOSummary.names)
        lines.append(["", "all"] + e.summary.values.map(csvNumber))
        for k in e.categories.indices {
            lines.append(
                [String(e.categories[k].id), e.categories[k].name] + e.summary(category: k).values.map(csvNumber))
        }
    case .voc(let list):
        lines.append(["class"] + list.map { "AP@\(threshold($0.iouThreshold))" } + ["objects", "detections"])
        lines.append(["mAP"] + list.map { csvNumber($0.mAP) } + ["", ""])
        for k in list[0].classes.indices {
            let c = list[0].classes[k]
            lines.append(
                [c.name] + list.map { csvNumber($0.classes[k].ap) } + [String(c.positives), String(c.detections)])
        }
    }
    return csv(lines)
}

// MARK: - A batch

/// The comparison table of a batch in Markdown, best first (see `rankedByHeadline`); files that failed are
/// listed under the table with their error.
public func renderBatchMarkdown(_ rows: [BatchRow], groundTruth: String) -> String {
    let ranked = rankedByHeadline(rows)
    let (header, body) = batchColumns(ranked)
    let names = displayNames(ranked.map(\.file))
    var out = "# Evaluation of \(rows.count) result file\(rows.count == 1 ? "" : "s")\n\n"
    out += "Ground truth: \(groundTruth)"
    if let metric = ranked.first(where: { $0.result != nil })?.result?.metric {
        out += ", metric: \(metric.rawValue)"
    }
    out += "\n\n| " + (["#", "file"] + header).joined(separator: " | ") + " |\n"
    out += "|" + String(repeating: "---:|", count: 1) + "---|" + String(repeating: "---:|", count: header.count) + "\n"
    for (n, row) in ranked.enumerated() where row.result != nil {
        out += "| " + ([String(n + 1), markdownEscape(names[n])] + body[n]).joined(separator: " | ") + " |\n"
    }
    let failed = ranked.indices.filter { ranked[$0].result == nil }
    if !failed.isEmpty {
        out += "\nFailed (\(failed.count)):\n\n"
        for n in failed {
            out += "- \(markdownEscape(names[n])): \(markdownEscape(ranked[n].error ?? "unknown error"))\n"
        }
    }
    return out
}

/// The same comparison as CSV (full paths; an `error` column for files that failed).
public func renderBatchCSV(_ rows: [BatchRow]) -> String {
    let ranked = rankedByHeadline(rows)
    let (header, body) = batchColumns(ranked, csv: true)
    var lines = [["rank", "file"] + header + ["error"]]
    for (n, row) in ranked.enumerated() {
        lines.append([row.result == nil ? "" : String(n + 1), row.file] + body[n] + [row.error ?? ""])
    }
    return csv(lines)
}

/// The batch as JSON: a list, best first, of `{"file": path, "result": <renderJSON of that file>}` (files that
/// failed are left out; they are in the tables with their error).
public func renderBatchJSON(_ rows: [BatchRow]) -> String {
    let entries = rankedByHeadline(rows).compactMap { row -> String? in
        guard let result = row.result else { return nil }
        let body = renderJSON(result).trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(
            of: "\n", with: "\n  ")
        return "  {\"file\": \(jsonString(row.file)), \"result\": \(body)}"
    }
    return "[\n" + entries.joined(separator: ",\n") + "\n]\n"
}

/// Column names and per-row cells of the batch tables: detections, then the 12 COCO numbers or the VOC mAP at
/// each threshold.
private func batchColumns(_ rows: [BatchRow], csv: Bool = false) -> (header: [String], body: [[String]]) {
    let format: (Double) -> String = csv ? csvNumber : { fraction($0, 4) }
    guard let first = rows.first(where: { $0.result != nil })?.result else {
        return (["detections"], rows.map { _ in [""] })
    }
    switch first {
    case .coco:
        return (
            ["detections"] + COCOSummary.names,
            rows.map { row in
                guard case .coco(let e)? = row.result else { return [""] + COCOSummary.names.map { _ in "" } }
                return [String(row.detections)] + e.summary.values.map(format)
            }
        )
    case .voc(let list):
        let header = ["detections"] + list.map { "mAP@\(threshold($0.iouThreshold))" }
        return (
            header,
            rows.map { row in
                guard case .voc(let l)? = row.result else { return [""] + list.map { _ in "" } }
                return [String(row.detections)] + l.map { format($0.mAP) }
            }
        )
    }
}

// MARK: - Formatting helpers

/// A fraction with `digits` decimals, "-" when undefined (-1).
func fraction(_ value: Double, _ digits: Int) -> String {
    value > -1 ? String(format: "%.\(digits)f", value) : "-"
}

/// An IoU threshold as people write it: 0.5, 0.75.
func threshold(_ value: Double) -> String {
    var s = String(format: "%.2f", value)
    while s.hasSuffix("0") && !s.hasSuffix(".0") { s.removeLast() }
    return s
}

/// Shortest text that reads back as the same double (Swift's description), as Python's json writes it.
func jsonNumber(_ value: Double) -> String {
    guard value.isFinite else { return "null" }
    return "\(value)"
}

func csvNumber(_ value: Double) -> String { jsonNumber(value) }

func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

/// An object with members in the given order, one per line, indented by `indent` levels of two spaces.
func jsonObject(_ members: [(String, String)], indent: Int) -> String {
    if members.isEmpty { return "{}" }
    let pad = String(repeating: "  ", count: indent + 1)
    let body = members.map { "\(pad)\(jsonString($0.0)): \($0.1)" }.joined(separator: ",\n")
    return "{\n\(body)\n\(String(repeating: "  ", count: indent))}"
}

func csv(_ lines: [[String]]) -> String {
    lines.map { $0.map(csvField).joined(separator: ",") }.joined(separator: "\n") + "\n"
}

func csvField(_ s: String) -> String {
    guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
    return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

func markdownEscape(_ s: String) -> String {
    s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
}

/// Paths with their common folder removed ("runs/a/results.json", "runs/b/results.json" -> "a/results.json",
/// "b/results.json").
func displayNames(_ paths: [String]) -> [String] {
    guard paths.count > 1 else { return paths.map { ($0 as NSString).lastPathComponent } }
    let split = paths.map { $0.split(separator: "/", omittingEmptySubsequences: false) }
    var common = 0
    while split.allSatisfy({ $0.count > common + 1 }) && Set(split.map { $0[common] }).count == 1 { common += 1 }
    return split.map { $0.dropFirst(common).joined(separator: "/") }
}

/// Aligned columns: first column left-aligned, the others right-aligned.
func textTable(header: [String], rows: [[String]], separatorBeforeLast: Bool = false) -> String {
    let all = [header] + rows
    let widths = header.indices.map { c in all.map { $0.indices.contains(c) ? $0[c].count : 0 }.max() ?? 0 }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { c, text in
            let padding = String(repeating: " ", count: max(widths[c] - text.count, 0))
            return c == 0 ? text + padding : padding + text
        }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) + "\n"
    }
    let rule = String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1)) + "\n"
    var out = line(header) + rule
    for (n, row) in rows.enumerated() {
        if separatorBeforeLast && n == rows.count - 1 { out += rule }
        out += line(row)
    }
    return out
}
