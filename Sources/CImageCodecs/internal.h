// Helpers shared by the codec files. Not part of the public interface (lives outside include/).
#ifndef CIMAGECODECS_INTERNAL_H
#define CIMAGECODECS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/// printf-style write into a caller's message buffer; always NUL-terminates, tolerates a NULL buffer.
void cic_format_message(char *message, size_t capacity, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/// Width / height declared by a JPEG SOFn marker or a PNG IHDR chunk (see cic_probe_size).
int cic_probe_jpeg_size(const uint8_t *data, size_t size, int64_t *width, int64_t *height);
int cic_probe_png_size(const uint8_t *data, size_t size, int64_t *width, int64_t *height);

/// True when width * height is positive and exceeds max_pixels (max_pixels <= 0 means "no limit").
int cic_over_limit(int64_t width, int64_t height, int64_t max_pixels);

/// The start of every decoder: clears the message and the outputs; CIC_ERR_INVALID_ARGUMENT (with a message)
/// when a pointer is missing, CIC_OK otherwise.
int cic_begin_decode(const uint8_t *data, uint8_t **pixels_out, int64_t *width_out, int64_t *height_out,
                     char *message, size_t capacity);

#endif
