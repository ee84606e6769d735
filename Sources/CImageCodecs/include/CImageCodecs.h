#ifndef CIMAGECODECS_H
#define CIMAGECODECS_H

// A small C shim over libjpeg(-turbo) and libpng.
//
// Both libraries report fatal errors through callbacks that must not return; the default libjpeg handler
// even calls exit(). Every function here installs its own handlers, which longjmp back into the function,
// release what was allocated and return an error code with a human-readable message. Nothing here prints,
// exits or aborts.
//
// Decoders read from a memory buffer and produce 8-bit RGB, interleaved, row-major (width * 3 bytes per row,
// no padding). Encoders produce a complete file image in a malloc'd buffer. Buffers returned through `out`
// parameters belong to the caller and must be released with cic_free().

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Result codes. CIC_OK is zero; every other value comes with a message.
typedef enum {
    CIC_OK = 0,
    CIC_ERR_INVALID_ARGUMENT = 1, ///< a parameter is out of range (null buffer, width <= 0, quality > 100, ...)
    CIC_ERR_NOT_RECOGNIZED = 2,   ///< the data does not start with the JPEG / PNG signature
    CIC_ERR_TRUNCATED = 3,        ///< the data ends before the image is complete
    CIC_ERR_CORRUPT = 4,          ///< the data is malformed
    CIC_ERR_TOO_LARGE = 5,        ///< declared width * height exceeds the pixel limit (width/height are reported)
    CIC_ERR_UNSUPPORTED = 6,      ///< a valid file using a feature this shim does not handle
    CIC_ERR_OUT_OF_MEMORY = 7,    ///< an allocation failed
    CIC_ERR_ENCODE = 8            ///< the encoder failed
} cic_status;

/// Capacity callers should reserve for error messages (longer messages are truncated, always NUL-terminated).
#define CIC_MESSAGE_CAPACITY 512

/// Reads the width and height declared in a JPEG (first SOFn marker) or PNG (IHDR) header without decoding.
/// Returns CIC_OK and sets *width / *height, CIC_ERR_NOT_RECOGNIZED for other data, CIC_ERR_TRUNCATED when
/// the header is incomplete, or CIC_ERR_CORRUPT.
int cic_probe_size(const uint8_t *data, size_t size, int64_t *width, int64_t *height);

/// Decodes a JPEG file held in memory into 8-bit RGB.
///
/// Grayscale and YCbCr images are converted by libjpeg; CMYK / YCCK images are converted here assuming the
/// Adobe (inverted) convention that virtually every CMYK JPEG uses, with the same arithmetic as Pillow.
/// A file that ends early is an error (CIC_ERR_TRUNCATED), and so is entropy-coded data that is cut short or
/// damaged (libjpeg's "premature end of data segment", "bad Huffman code", lost restart markers:
/// CIC_ERR_CORRUPT); libjpeg would fill the lost blocks with grey. Harmless warnings (extraneous bytes before
/// a marker, unusual JFIF versions, ...) are tolerated.
///
/// Before any pixel buffer is allocated, width * height is compared with `max_pixels`; when over the limit
/// the function returns CIC_ERR_TOO_LARGE and still reports the declared size in *width / *height.
/// On success *pixels points to width * height * 3 bytes (free with cic_free).
int cic_decode_jpeg(const uint8_t *data, size_t size, int64_t max_pixels,
                    uint8_t **pixels, int64_t *width, int64_t *height,
                    char *message, size_t message_capacity);

/// Decodes a PNG file held in memory into 8-bit RGB.
///
/// Handles every PNG colour type and bit depth: grayscale (1/2/4/8/16 bit), gray + alpha, RGB, RGBA,
/// palette (with or without tRNS) and Adam7-interlaced images. 16-bit samples keep their high byte
/// (png_set_strip_16), alpha is dropped without compositing, gamma / colour-profile chunks are ignored.
/// A missing IEND chunk counts as truncation. Size limit and ownership as for cic_decode_jpeg.
int cic_decode_png(const uint8_t *data, size_t size, int64_t max_pixels,
                   uint8_t **pixels, int64_t *width, int64_t *height,
                   char *message, size_t message_capacity);

/// Encodes 8-bit RGB pixels (width * height * 3 bytes) as an 8-bit RGB, non-interlaced PNG.
/// `compression_level` is zlib's 0 (none) ... 9 (smallest). On success *out / *out_size hold the file.
int cic_encode_png(const uint8_t *rgb, int width, int height, int compression_level,
                   uint8_t **out, size_t *out_size,
                   char *message, size_t message_capacity);

/// Encodes 8-bit RGB pixels as a baseline JFIF JPEG with libjpeg's defaults (4:2:0 chroma subsampling,
/// standard tables scaled to `quality`, 1 ... 100). On success *out / *out_size hold the file.
int cic_encode_jpeg(const uint8_t *rgb, int width, int height, int quality,
                    uint8_t **out, size_t *out_size,
                    char *message, size_t message_capacity);

/// Releases a buffer returned by this shim. Accepts NULL.
void cic_free(void *pointer);

#ifdef __cplusplus
}
#endif

#endif
