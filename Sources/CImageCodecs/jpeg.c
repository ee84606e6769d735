// JPEG decoding and encoding over libjpeg(-turbo) with setjmp/longjmp error recovery.
#include "CImageCodecs.h"
#include "internal.h"

#include <setjmp.h>
#include <stdio.h>  // jpeglib.h needs FILE
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

// MARK: - Error manager

/// libjpeg's error manager extended with a jump target and the caller's message buffer.
/// error_exit and the fatal warning (premature end of file) longjmp back into the public function.
typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int status;
    int encoding;
    char *message;
    size_t capacity;
} jpeg_error;

static void on_error_exit(j_common_ptr cinfo) {
    jpeg_error *err = (jpeg_error *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    err->pub.format_message(cinfo, text);
    switch (err->pub.msg_code) {
    case JERR_OUT_OF_MEMORY:
        err->status = CIC_ERR_OUT_OF_MEMORY;
        cic_format_message(err->message, err->capacity, "out of memory while %s JPEG (%s)",
                           err->encoding ? "encoding" : "decoding", text);
        break;
    case JERR_BAD_PRECISION:
    case JERR_CONVERSION_NOTIMPL:
    case JERR_NOT_COMPILED:
    case JERR_ARITH_NOTIMPL:
    case JERR_NOTIMPL:
        if (!err->encoding) {
            err->status = CIC_ERR_UNSUPPORTED;
            cic_format_message(err->message, err->capacity, "unsupported JPEG variant (%s)", text);
            break;
        }
        /* fall through */
    default:
        if (err->encoding) {
            err->status = CIC_ERR_ENCODE;
            cic_format_message(err->message, err->capacity, "JPEG encoding failed (%s)", text);
        } else {
            err->status = CIC_ERR_CORRUPT;
            cic_format_message(err->message, err->capacity, "corrupt JPEG data (%s)", text);
        }
    }
    longjmp(err->jump, 1);
}

static void on_emit_message(j_common_ptr cinfo, int level) {
    jpeg_error *err = (jpeg_error *)cinfo->err;
    if (level >= 0) return;  // trace messages
    int code = err->pub.msg_code;
    if (code == JWRN_JPEG_EOF) {
        // libjpeg would pad the rest of the image with grey; a cut-off file is an error for us.
        err->status = CIC_ERR_TRUNCATED;
        cic_format_message(err->message, err->capacity,
                           "truncated JPEG data (the file ends before the image is complete)");
        longjmp(err->jump, 1);
    }
    if (code == JWRN_HIT_MARKER || code == JWRN_HUFF_BAD_CODE ||
        code == JWRN_MUST_RESYNC) {
        // Entropy-coded data is missing or damaged: libjpeg would fill the lost blocks with grey.
        char text[JMSG_LENGTH_MAX];
        err->pub.format_message(cinfo, text);
        err->status = CIC_ERR_CORRUPT;
        cic_format_message(err->message, err->capacity, "corrupt JPEG data (%s)", text);
        longjmp(err->jump, 1);
    }
    err->pub.num_warnings++;  // harmless warnings (extraneous bytes, odd JFIF versions, ...) are tolerated
}

static void on_output_message(j_common_ptr cinfo) { (void)cinfo; }  // never print to stderr

static struct jpeg_error_mgr *install_error_manager(jpeg_error *err, int encoding, char *message,
                                                    size_t capacity) {
    memset(err, 0, sizeof(*err));
    jpeg_std_error(&err->pub);
    err->pub.error_exit = on_error_exit;
    err->pub.emit_message = on_emit_message;
    err->pub.output_message = on_output_message;
    err->status = CIC_OK;
    err->encoding = encoding;
    err->message = message;
    err->capacity = capacity;
    return &err->pub;
}

// MARK: - Decoding

/// Pillow's CMYK -> RGB arithmetic on Adobe-inverted samples: with C = 255 - c', K = 255 - k',
/// R = (255 - K) - round((255 - K) * C / 255) where the division is Pillow's MULDIV255.
static inline uint8_t cmyk_channel(uint8_t inverted_ink, uint8_t inverted_black) {
    int ink = 255 - inverted_ink;
    int white = inverted_black;  // 255 - K
    int t = ink * white + 128;
    int v = white - (((t >> 8) + t) >> 8);
    return (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
}

static void cmyk_row_to_rgb(const uint8_t *cmyk, uint8_t *rgb, size_t width) {
    for (size_t x = 0; x < width; x++) {
        uint8_t k = cmyk[4 * x + 3];
        rgb[3 * x + 0] = cmyk_channel(cmyk[4 * x + 0], k);
        rgb[3 * x + 1] = cmyk_channel(cmyk[4 * x + 1], k);
        rgb[3 * x + 2] = cmyk_channel(cmyk[4 * x + 2], k);
    }
}

static int report_too_large(int64_t w, int64_t h, int64_t max_pixels, int64_t *width_out, int64_t *height_out,
                            char *message, size_t capacity) {
    *width_out = w;
    *height_out = h;
    cic_format_message(message, capacity, "image is %lldx%lld pixels, over the limit of %lld pixels",
                       (long long)w, (long long)h, (long long)max_pixels);
    return CIC_ERR_TOO_LARGE;
}

int cic_decode_jpeg(const uint8_t *data, size_t size, int64_t max_pixels, uint8_t **pixels_out,
                    int64_t *width_out, int64_t *height_out, char *message, size_t capacity) {
    int start = cic_begin_decode(data, pixels_out, width_out, height_out, message, capacity);
    if (start != CIC_OK) return start;

    // Refuse oversized images from the frame header alone, before libjpeg allocates anything.
    int64_t declared_w = 0, declared_h = 0;
    int probe = cic_probe_jpeg_size(data, size, &declared_w, &declared_h);
    if (probe == CIC_ERR_NOT_RECOGNIZED || size < 3 || data[2] != 0xFF) {
        cic_format_message(message, capacity, "not a JPEG file (no SOI marker)");
        return CIC_ERR_NOT_RECOGNIZED;
    }
    if (probe == CIC_OK && cic_over_limit(declared_w, declared_h, max_pixels))
        return report_too_large(declared_w, declared_h, max_pixels, width_out, height_out, message, capacity);

    struct jpeg_decompress_struct cinfo;
    jpeg_error err;
    uint8_t *volatile pixels = NULL;
    uint8_t *volatile cmyk_row = NULL;
    volatile int created = 0;

    cinfo.err = install_error_manager(&err, 0, message, capacity);
    if (setjmp(err.jump)) {
        if (created) jpeg_destroy_decompress(&cinfo);
        free(pixels);
        free(cmyk_row);
        return err.status;
    }
    jpeg_create_decompress(&cinfo);
    created = 1;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    int64_t w = cinfo.image_width, h = cinfo.image_height;
    if (cic_over_limit(w, h, max_pixels)) {
        jpeg_destroy_decompress(&cinfo);
        return report_too_large(w, h, max_pixels, width_out, height_out, message, capacity);
    }
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);

    int expected_components = cmyk ? 4 : 3;
    if (cinfo.output_components != expected_components || cinfo.output_width == 0 || cinfo.output_height == 0) {
        jpeg_destroy_decompress(&cinfo);
        cic_format_message(message, capacity, "unsupported JPEG colour layout (%d components)",
                           cinfo.output_components);
        return CIC_ERR_UNSUPPORTED;
    }
    size_t width = cinfo.output_width, height = cinfo.output_height, stride = width * 3;
    pixels = malloc(stride * height);
    if (cmyk) cmyk_row = malloc(width * 4);
    if (pixels == NULL || (cmyk && cmyk_row == NULL)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        free(cmyk_row);
        cic_format_message(message, capacity, "out of memory allocating %zux%zu RGB pixels", width, height);
        return CIC_ERR_OUT_OF_MEMORY;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        size_t y = cinfo.output_scanline;
        JSAMPROW target = cmyk ? cmyk_row : pixels + y * stride;
        if (jpeg_read_scanlines(&cinfo, &target, 1) != 1) break;  // cannot happen with a memory source
        if (cmyk) cmyk_row_to_rgb(cmyk_row, pixels + y * stride, width);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(cmyk_row);

    *pixels_out = pixels;
    *width_out = (int64_t)width;
    *height_out = (int64_t)height;
    return CIC_OK;
}

// MARK: - Encoding

/// A destination manager writing into a growing malloc'd buffer that this file owns (libjpeg's own
/// jpeg_mem_dest frees and replaces buffers behind the caller's back, which makes error cleanup fragile).
typedef struct {
    struct jpeg_destination_mgr pub;
    uint8_t *data;
    size_t capacity;
    size_t size;
} growing_destination;

static void dest_init(j_compress_ptr cinfo) {
    growing_destination *dest = (growing_destination *)cinfo->dest;
    dest->capacity = 64 * 1024;
    dest->data = malloc(dest->capacity);
    if (dest->data == NULL) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 1);
    dest->pub.next_output_byte = dest->data;
    dest->pub.free_in_buffer = dest->capacity;
}

static boolean dest_empty(j_compress_ptr cinfo) {
    growing_destination *dest = (growing_destination *)cinfo->dest;
    size_t old_capacity = dest->capacity;
    uint8_t *grown = realloc(dest->data, old_capacity * 2);
    if (grown == NULL) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 2);
    dest->data = grown;
    dest->capacity = old_capacity * 2;
    dest->pub.next_output_byte = grown + old_capacity;
    dest->pub.free_in_buffer = dest->capacity - old_capacity;
    return TRUE;
}

static void dest_term(j_compress_ptr cinfo) {
    growing_destination *dest = (growing_destination *)cinfo->dest;
    dest->size = dest->capacity - dest->pub.free_in_buffer;
}

int cic_encode_jpeg(const uint8_t *rgb, int width, int height, int quality, uint8_t **out, size_t *out_size,
                    char *message, size_t capacity) {
    if (message && capacity) message[0] = '\0';
    if (rgb == NULL || out == NULL || out_size == NULL) {
        cic_format_message(message, capacity, "invalid argument (null pointer)");
        return CIC_ERR_INVALID_ARGUMENT;
    }
    *out = NULL;
    *out_size = 0;
    if (width <= 0 || height <= 0 || width > JPEG_MAX_DIMENSION || height > JPEG_MAX_DIMENSION) {
        cic_format_message(message, capacity, "cannot encode a %dx%d image as JPEG (each side must be 1...%d)",
                           width, height, (int)JPEG_MAX_DIMENSION);
        return CIC_ERR_INVALID_ARGUMENT;
    }
    if (quality < 1 || quality > 100) {
        cic_format_message(message, capacity, "JPEG quality %d is outside 1...100", quality);
        return CIC_ERR_INVALID_ARGUMENT;
    }

    struct jpeg_compress_struct cinfo;
    jpeg_error err;
    growing_destination dest;
    volatile int created = 0;
    memset(&dest, 0, sizeof(dest));

    cinfo.err = install_error_manager(&err, 1, message, capacity);
    if (setjmp(err.jump)) {
        if (created) jpeg_destroy_compress(&cinfo);
        free(dest.data);
        return err.status;
    }
    jpeg_create_compress(&cinfo);
    created = 1;
    dest.pub.init_destination = dest_init;
    dest.pub.empty_output_buffer = dest_empty;
    dest.pub.term_destination = dest_term;
    cinfo.dest = &dest.pub;

    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    size_t stride = (size_t)width * 3;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)cinfo.next_scanline * stride);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);

    *out = dest.data;
    *out_size = dest.size;
    return CIC_OK;
}
