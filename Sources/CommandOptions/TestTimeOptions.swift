import ArgumentParser
import Detector

/// The test-time augmentation and merging options that `detect` and `evaluate --weights` share.
public struct TestTimeOptions: ParsableArguments {
    @Flag(
        help:
            ArgumentHelp("Test-time augmentation: run each image at several shorter sides (default 0.75x, 1x, 1.25x "
                + "the model's) and mirrored, and merge the boxes.")
    )
    public var tta = false

    @Option(
        help: ArgumentHelp("Shorter sides of the --tta passes, e.g. 384,448,512 (implies --tta).", valueName: "list"))
    public var ttaScales: String?

    @Flag(inversion: .prefixedNo, help: "With --tta: also run the mirrored image.")
    public var ttaFlip = true

    @Flag(
        help:
            ArgumentHelp("When merging the boxes of several passes or models: each kept box becomes the "
                + "score-weighted mean of the boxes it suppressed (box voting).")
    )
    public var boxVoting = false

    public init() {}

    /// Whether any of these options was given.
    public var isUsed: Bool { tta || ttaScales != nil || boxVoting }

    /// The detectors as one `DetectorEnsemble` with these settings (`names` label them in messages).
    public func ensemble(_ members: [DetectorRunner], names: [String]) throws -> DetectorEnsemble {
        let augmentation = try TestTimeAugmentation.fromOptions(
            tta: tta, scales: ttaScales, flip: ttaFlip,
            minSize: members.first?.config.input.minSize ?? 0)
        return try DetectorEnsemble(members, names: names, augmentation: augmentation, boxVoting: boxVoting)
    }
}
