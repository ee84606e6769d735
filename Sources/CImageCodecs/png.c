// PNG decoding and encoding over libpng with setjmp/longjmp error recovery.
#include "CImageCodecs.h"
#include "internal.h"

#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

// MARK: - Error handling

/// Error context passed to libpng as its error pointer.
typedef struct {
    int status;       ///< status to return when libpng reports an error
    int truncated;    ///< set by the reader when the data ran out
    int encoding;
    char *message;
    size_t capacity;
} png_error_context;

static void on_png_error(png_structp png, png_const_charp text) {
    png_error_context *ctx = (png_error_context *)png_get_error_ptr(png);
    if (ctx->truncated) {
        ctx->status = CIC_ERR_TRUNCATED;
        cic_format_message(ctx->message, ctx->capacity,
                           "truncated PNG data (the file ends before the image is complete)");
    } else if (ctx->status == CIC_ERR_OUT_OF_MEMORY) {
        // the message was written where the allocation failed
    } else if (ctx->encoding) {
        ctx->status = CIC_ERR_ENCODE;
        cic_format_message(ctx->message, ctx->capacity, "PNG encoding failed (%s)", text);
    } else {
        ctx->status = CIC_ERR_CORRUPT;
        cic_format_message(ctx->message, ctx->capacity, "corrupt PNG data (%s)", text);
    }
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp text) {
    (void)png;  // warnings (unknown chunks, incorrect sRGB profiles, ...) are ignored, never printed
    (void)text;
}

// MARK: - Decoding

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t position;
} memory_reader;

static void read_from_memory(png_structp png, png_bytep out, png_size_t count) {
    memory_reader *reader = (memory_reader *)png_get_io_ptr(png);
    if (count > reader->size - reader->position) {
        ((png_error_context *)png_get_error_ptr(png))->truncated = 1;
        png_error(png, "unexpected end of data");
    }
    memcpy(out, reader->data + reader->position, count);
    reader->position += count;
}

int cic_decode_png(const uint8_t *data, size_t size, int64_t max_pixels, uint8_t **pixels_out,
                   int64_t *width_out, int64_t *height_out, char *message, size_t capacity) {
    int start = cic_begin_decode(data, pixels_out, width_out, height_out, message, capacity);
    if (start != CIC_OK) return start;

    // Refuse oversized images from IHDR alone, before libpng allocates anything.
    int64_t declared_w = 0, declared_h = 0;
    int probe = cic_probe_png_size(data, size, &declared_w, &declared_h);
    if (probe == CIC_ERR_NOT_RECOGNIZED || size < 8) {
        cic_format_message(message, capacity, "not a PNG file (bad signature)");
        return CIC_ERR_NOT_RECOGNIZED;
    }
    if (probe == CIC_OK && cic_over_limit(declared_w, declared_h, max_pixels)) {
        *width_out = declared_w;
        *height_out = declared_h;
        cic_format_message(message, capacity, "image is %lldx%lld pixels, over the limit of %lld pixels",
                           (long long)declared_w, (long long)declared_h, (long long)max_pixels);
        return CIC_ERR_TOO_LARGE;
    }

    png_error_context ctx = {CIC_ERR_CORRUPT, 0, 0, message, capacity};
    memory_reader reader = {data, size, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, on_png_error, on_png_warning);
    if (png == NULL) {
        cic_format_message(message, capacity, "out of memory creating the PNG decoder");
        return CIC_ERR_OUT_OF_MEMORY;
    }
    png_infop volatile info = NULL;
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;

    if (setjmp(png_jmpbuf(png))) {
        png_infop doomed = info;
        png_destroy_read_struct(&png, doomed ? &doomed : NULL, NULL);
        free(pixels);
        free(rows);
        return ctx.status;
    }
    info = png_create_info_struct(png);
    if (info == NULL) {
        ctx.status = CIC_ERR_OUT_OF_MEMORY;
        cic_format_message(message, capacity, "out of memory creating the PNG decoder");
        png_longjmp(png, 1);
    }
    png_set_read_fn(png, &reader, read_from_memory);
    png_read_info(png, info);

    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    if (cic_over_limit(width, height, max_pixels)) {
        *width_out = width;
        *height_out = height;
        ctx.status = CIC_ERR_TOO_LARGE;
        cic_format_message(message, capacity, "image is %ux%u pixels, over the limit of %lld pixels",
                           (unsigned)width, (unsigned)height, (long long)max_pixels);
        png_longjmp(png, 1);
    }

    // Normalise every colour type / bit depth to 8-bit RGB.
    png_set_expand(png);       // palette -> RGB, gray < 8 bit -> 8 bit, tRNS -> alpha channel
    png_set_strip_16(png);     // 16 -> 8 bit by keeping the high byte
    png_set_strip_alpha(png);  // drop alpha (no compositing)
    png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    size_t stride = (size_t)width * 3;
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != stride) {
        ctx.status = CIC_ERR_UNSUPPORTED;
        cic_format_message(message, capacity, "unsupported PNG layout (%d channels of %d bits after conversion)",
                           png_get_channels(png, info), png_get_bit_depth(png, info));
        png_longjmp(png, 1);
    }
    pixels = malloc(stride * height);
    rows = malloc(sizeof(png_bytep) * height);
    if (pixels == NULL || rows == NULL) {
        ctx.status = CIC_ERR_OUT_OF_MEMORY;
        cic_format_message(message, capacity, "out of memory allocating %ux%u RGB pixels", (unsigned)width,
                           (unsigned)height);
        png_longjmp(png, 1);
    }
    for (size_t y = 0; y < height; y++) rows[y] = pixels + y * stride;
    png_read_image(png, rows);
    png_read_end(png, NULL);  // reads up to IEND, so a file cut after the image data is still truncated

    png_infop doomed = info;
    png_destroy_read_struct(&png, &doomed, NULL);
    free(rows);
    *pixels_out = pixels;
    *width_out = width;
    *height_out = height;
    return CIC_OK;
}

// MARK: - Encoding

typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
} memory_writer;

static void write_to_memory(png_structp png, png_bytep bytes, png_size_t count) {
    memory_writer *writer = (memory_writer *)png_get_io_ptr(png);
    if (count > writer->capacity - writer->size) {
        size_t needed = writer->size + count;
        size_t capacity = writer->capacity ? writer->capacity : 64 * 1024;
        while (capacity < needed) capacity *= 2;
        uint8_t *grown = realloc(writer->data, capacity);
        if (grown == NULL) {
            png_error_context *ctx = (png_error_context *)png_get_error_ptr(png);
            ctx->status = CIC_ERR_OUT_OF_MEMORY;
            cic_format_message(ctx->message, ctx->capacity, "out of memory while encoding PNG");
            png_error(png, "out of memory");
        }
        writer->data = grown;
        writer->capacity = capacity;
    }
    memcpy(writer->data + writer->size, bytes, count);
    writer->size += count;
}

static void flush_memory(png_structp png) { (void)png; }

int cic_encode_png(const uint8_t *rgb, int width, int height, int compression_level, uint8_t **out,
                   size_t *out_size, char *message, size_t capacity) {
    if (message && capacity) message[0] = '\0';
    if (rgb == NULL || out == NULL || out_size == NULL) {
        cic_format_message(message, capacity, "invalid argument (null pointer)");
        return CIC_ERR_INVALID_ARGUMENT;
    }
    *out = NULL;
    *out_size = 0;
    if (width <= 0 || height <= 0) {
        cic_format_message(message, capacity, "cannot encode a %dx%d image as PNG", width, height);
        return CIC_ERR_INVALID_ARGUMENT;
    }
    if (compression_level < 0 || compression_level > 9) {
        cic_format_message(message, capacity, "PNG compression level %d is outside 0...9", compression_level);
        return CIC_ERR_INVALID_ARGUMENT;
    }

    png_error_context ctx = {CIC_ERR_ENCODE, 0, 1, message, capacity};
    memory_writer writer = {NULL, 0, 0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, on_png_error, on_png_warning);
    if (png == NULL) {
        cic_format_message(message, capacity, "out of memory creating the PNG encoder");
        return CIC_ERR_OUT_OF_MEMORY;
    }
    png_infop volatile info = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_infop doomed = info;
        png_destroy_write_struct(&png, doomed ? &doomed : NULL);
        free(writer.data);
        return ctx.status;
    }
    info = png_create_info_struct(png);
    if (info == NULL) {
        ctx.status = CIC_ERR_OUT_OF_MEMORY;
        cic_format_message(message, capacity, "out of memory creating the PNG encoder");
        png_longjmp(png, 1);
    }
    png_set_write_fn(png, &writer, write_to_memory, flush_memory);
    png_set_compression_level(png, compression_level);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t stride = (size_t)width * 3;
    for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(rgb + (size_t)y * stride));
    png_write_end(png, info);

    png_infop doomed = info;
    png_destroy_write_struct(&png, &doomed);
    *out = writer.data;
    *out_size = writer.size;
    return CIC_OK;
}
