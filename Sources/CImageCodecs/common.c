// Message formatting, header probing and the pixel-limit check shared by the JPEG and PNG codecs.
#include "CImageCodecs.h"
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void cic_format_message(char *message, size_t capacity, const char *format, ...) {
    if (message == NULL || capacity == 0) return;
    va_list args;
    va_start(args, format);
    vsnprintf(message, capacity, format, args);
    va_end(args);
    message[capacity - 1] = '\0';
}

void cic_free(void *pointer) { free(pointer); }

int cic_over_limit(int64_t width, int64_t height, int64_t max_pixels) {
    if (max_pixels <= 0 || width <= 0 || height <= 0) return 0;
    // Both factors are below 2^32 (PNG) or 2^16 (JPEG), so the product cannot overflow int64.
    return width * height > max_pixels;
}

static int is_jpeg_sof(uint8_t marker) {
    // SOF0..SOF15 are 0xC0..0xCF, except DHT (C4), JPG (C8) and DAC (CC).
    return marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
}

int cic_probe_jpeg_size(const uint8_t *d, size_t n, int64_t *width, int64_t *height) {
    if (n < 2) return CIC_ERR_TRUNCATED;
    if (d[0] != 0xFF || d[1] != 0xD8) return CIC_ERR_NOT_RECOGNIZED;
    size_t i = 2;
    for (;;) {
        while (i < n && d[i] != 0xFF) i++;  // libjpeg skips stray bytes between segments, so do we
        while (i < n && d[i] == 0xFF) i++;  // fill bytes
        if (i >= n) return CIC_ERR_TRUNCATED;
        uint8_t marker = d[i++];
        if (marker == 0x01 || marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no payload
        if (marker == 0xD9 || marker == 0xDA) return CIC_ERR_CORRUPT;  // EOI / SOS before any frame header
        if (n - i < 2) return CIC_ERR_TRUNCATED;
        size_t length = ((size_t)d[i] << 8) | d[i + 1];
        if (length < 2) return CIC_ERR_CORRUPT;
        if (is_jpeg_sof(marker)) {
            // length (2) precision (1) height (2) width (2)
            if (n - i < 7) return CIC_ERR_TRUNCATED;
            *height = ((int64_t)d[i + 3] << 8) | d[i + 4];
            *width = ((int64_t)d[i + 5] << 8) | d[i + 6];
            return CIC_OK;
        }
        if (n - i < length) return CIC_ERR_TRUNCATED;
        i += length;
    }
}

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};

int cic_probe_png_size(const uint8_t *d, size_t n, int64_t *width, int64_t *height) {
    for (size_t i = 0; i < 8; i++) {
        if (i >= n) return CIC_ERR_TRUNCATED;
        if (d[i] != png_signature[i]) return CIC_ERR_NOT_RECOGNIZED;
    }
    // The IHDR chunk must come first: length (4) "IHDR" (4) width (4) height (4) ...
    if (n < 24) return CIC_ERR_TRUNCATED;
    if (d[12] != 'I' || d[13] != 'H' || d[14] != 'D' || d[15] != 'R') return CIC_ERR_CORRUPT;
    *width = ((int64_t)d[16] << 24) | ((int64_t)d[17] << 16) | ((int64_t)d[18] << 8) | d[19];
    *height = ((int64_t)d[20] << 24) | ((int64_t)d[21] << 16) | ((int64_t)d[22] << 8) | d[23];
    return CIC_OK;
}

int cic_probe_size(const uint8_t *data, size_t size, int64_t *width, int64_t *height) {
    if (data == NULL || width == NULL || height == NULL) return CIC_ERR_INVALID_ARGUMENT;
    if (size >= 1 && data[0] == 0xFF) return cic_probe_jpeg_size(data, size, width, height);
    if (size >= 1 && data[0] == 0x89) return cic_probe_png_size(data, size, width, height);
    return size == 0 ? CIC_ERR_TRUNCATED : CIC_ERR_NOT_RECOGNIZED;
}

int cic_begin_decode(const uint8_t *data, uint8_t **pixels_out, int64_t *width_out, int64_t *height_out,
                     char *message, size_t capacity) {
    if (message && capacity) message[0] = '\0';
    if (data == NULL || pixels_out == NULL || width_out == NULL || height_out == NULL) {
        cic_format_message(message, capacity, "invalid argument (null pointer)");
        return CIC_ERR_INVALID_ARGUMENT;
    }
    *pixels_out = NULL;
    *width_out = 0;
    *height_out = 0;
    return CIC_OK;
}
