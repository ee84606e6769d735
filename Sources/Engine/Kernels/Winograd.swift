import CKernels
import Foundation

/// Winograd's minimal filtering F(4x4, 3x3) for 3x3 convolutions with stride 1 and padding 1 (`CKernels/winograd.c`):
/// per 4x4 output tile, 36 products of the transformed input and weights instead of the direct product's 144,
/// i.e. 2.25 multiply-adds per output and input channel instead of 9, on the same micro-kernel. Results agree
/// with the direct convolution to a few times its rounding error (the transforms' constants reach 8 and 1/24).
///
/// Where it runs: the training convolutions (forward; the input gradient as the transposed convolution; the weight
/// gradient as 36 products over the tiles), which read and write their NCHW tensors in place (each row of tiles
/// through a small channels-last patch, `ck_wino_nchw` / `ck_wino_weight_grad_nchw`), and the channels-last inference
/// path (`PackedConv`).
public enum Winograd {
    /// Whether eligible convolutions use it: nil (the default) where the vector micro-kernel exists (the AVX2 and
    /// AVX-512 levels; at the baseline level the products are OpenBLAS's and the micro-kernel a portable loop);
    /// `ENGINE_WINOGRAD=on|off` or setting this overrides.
    nonisolated(unsafe) public static var enabled: Bool? = {
        switch ProcessInfo.processInfo.environment["ENGINE_WINOGRAD"]?.lowercased() {
        case "on", "1", "true": return true
        case "off", "0", "false": return false
        default: return nil
        }
    }()

    /// Whether it is in use now (at the active instruction set).
    public static var active: Bool { enabled ?? (InstructionSet.active >= .avx2) }

    /// Below this many 4x4 output tiles the direct product is faster (its 36 small products and the transforms
    /// cost more than they save: ResNet-101's 7x7 maps at batch 1, 4 tiles, take 2.0 ms against 1.5 ms direct;
    /// 14x14, 16 tiles, 0.75 ms against 1.33 ms).
    static let minTiles = 16

    /// Whether a convolution of this shape (kernel, stride, padding, dilation) can use it at all.
    public static func fits(kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int) = (1, 1))
        -> Bool
    {
        kernel == (3, 3) && stride == (1, 1) && padding == (1, 1) && dilation == (1, 1)
    }

    /// Whether a convolution of that shape over `n` images of `h` x `w` with `c` input channels takes it now.
    static func pays(n: Int, h: Int, w: Int, c: Int) -> Bool {
        active && c >= 32 && ck_wino_tiles(Int32(n), Int32(h), Int32(w)) >= minTiles
    }

    /// Whether a training convolution (NCHW, weights transformed at every call) takes it: both channel counts at least
    /// 32 (CIFAR's 16-channel stage gains nothing: 5.3-5.8 ms forward against 5.2-5.6 ms by im2col, measured with the
    /// in-place NCHW transforms) and at least 64 tiles (the per-call weight transform costs ResNet-101's 14x14 layer
    /// at batch 1 more than it saves).
    /// At most 512 x 512 channels: the transformed weights take 36 x C x O floats while the layer runs (151 MB for
    /// the RPN head's 1024 x 1024 convolution, which lifted fine-tuning's peak RSS above PyTorch's).
    static func applies(_ g: ConvGeometry) -> Bool {
        fits(kernel: (g.kh, g.kw), stride: (g.sh, g.sw), padding: (g.ph, g.pw), dilation: (g.dh, g.dw))
            && g.o >= 32 && g.c * g.o <= 512 * 512 && pays(n: g.n, h: g.h, w: g.w, c: g.c)
            && ck_wino_tiles(Int32(g.n), Int32(g.h), Int32(g.w)) >= 64
    }
}

extension ConvKernels {
    /// y (N, O, H, W) = conv3x3(x (N, C, H, W), w (O, C, 3, 3)), stride 1, padding 1, by Winograd reading x and
    /// writing y in place (each row of tiles through a channels-last patch; weights packed into raw workspace slot
    /// 0). Returns false (y incomplete) when the kernel's workspace could not be allocated.
    static func winogradForward(
        _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ g: ConvGeometry, _ y: UnsafeMutablePointer<Float>
    ) -> Bool {
        let up = Workspace.scratch(0, count: ck_wino_packed_size(Int32(g.o), Int32(g.c)))
        ck_wino_pack(w, nil, Int32(g.o), Int32(g.c), up)
        return ck_wino_nchw(
            x, Int32(g.n), Int32(g.h), Int32(g.w), Int32(g.c), up, Int32(g.o), y, Int32(currentGEMMThreads())) != 0
    }

    /// Below this many tiles the weight gradient keeps the im2col product (Winograd's 36 products are then too
    /// short: ResNet-101's 7x7 layer at batch 8, 32 tiles, 8.9 ms against about 9 ms).
    static let winogradWeightGradientMinTiles = 128
    /// Above 256 x 256 channels the weight gradient keeps the im2col product: its 36 C x O gradient matrices would
    /// take 38 MB more at ResNet's 512-channel layers (fine-tuning's peak RSS), for a gain within noise there.
    static let winogradWeightGradientMaxChannelProduct = 256 * 256

    /// The gradients of a Winograd-eligible convolution (`Winograd.applies`) by Winograd, through channels-last
    /// copies of gy and x: gx (overwritten) as the same convolution of gy with the kernel flipped in space and its
    /// channels swapped (see `inputGradientAsConvolution`), gw (accumulated into) as 36 products over the tiles
    /// when there are enough of them. Returns which of the two it computed; the caller computes the others.
    static func winogradBackward(
        _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ gy: UnsafePointer<Float>, _ g: ConvGeometry,
        gx: UnsafeMutablePointer<Float>?, gw: UnsafeMutablePointer<Float>?
    ) -> (gx: Bool, gw: Bool) {
        var done = (gx: false, gw: false)
        if let gx {
            let wf = Workspace.scratch(3, count: g.o * g.c * 9)
            flipKernel(w, g, wf)
            let t = ConvGeometry(n: g.n, c: g.o, h: g.h, w: g.w, o: g.c, kh: 3, kw: 3, ph: 1, pw: 1)
            done.gx = winogradForward(gy, wf, t, gx)
        }
        if let gw, ck_wino_tiles(Int32(g.n), Int32(g.h), Int32(g.w)) >= winogradWeightGradientMinTiles,
            g.c * g.o <= winogradWeightGradientMaxChannelProduct
        {
            done.gw =
                ck_wino_weight_grad_nchw(
                    x, gy, Int32(g.n), Int32(g.h), Int32(g.w), Int32(g.c), Int32(g.o), gw,
                    Int32(currentGEMMThreads())) != 0
        }
        return done
    }
}
