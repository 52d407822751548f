#pragma once
// libjpeg-turbo wrapped for Swift. libjpeg reports errors by calling `error_exit`, whose default
// calls exit(); recovering needs setjmp/longjmp, which Swift cannot express, so decoding and
// encoding run entirely in these C helpers and report failure through a message buffer.
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>

struct mge_jpeg_error {
    struct jpeg_error_mgr base;
    jmp_buf escape;
    char message[JMSG_LENGTH_MAX];
};

static void mge_jpeg_error_exit(j_common_ptr cinfo) {
    struct mge_jpeg_error *err = (struct mge_jpeg_error *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, err->message);
    longjmp(err->escape, 1);
}

/// Trace messages (level > 0) are dropped; a warning (level -1: corrupt or truncated data, which
/// libjpeg would otherwise paper over with grey pixels) is treated as an error.
static void mge_jpeg_silence(j_common_ptr cinfo, int level) {
    if (level < 0) mge_jpeg_error_exit(cinfo);
}

/// libjpeg's standard error manager with exits and warnings turned into a longjmp to `err->escape`. The caller still has to `setjmp(err->escape)` itself: a jump back into a
/// function that has returned is undefined.
static inline struct jpeg_error_mgr *mge_jpeg_errors(struct mge_jpeg_error *err) {
    struct jpeg_error_mgr *base = jpeg_std_error(&err->base);
    err->base.error_exit = mge_jpeg_error_exit;
    err->base.emit_message = mge_jpeg_silence;
    err->message[0] = 0;
    return base;
}

/// `jpeg_create_decompress` is a macro; Swift needs a function.
static inline void mge_jpeg_create_decompress(j_decompress_ptr cinfo) { jpeg_create_decompress(cinfo); }
static inline void mge_jpeg_create_compress(j_compress_ptr cinfo) { jpeg_create_compress(cinfo); }

/// Decodes a JPEG held in memory to interleaved 8-bit RGB (grayscale is expanded to RGB).
/// On success returns 0, sets *width/*height and a malloc'ed buffer of width*height*3 bytes in
/// *pixels (the caller frees it). On failure returns -1 and writes a reason into `message`.
/// An image of more than `max_pixels` pixels is refused before anything is allocated for it.
static inline int mge_jpeg_decode_rgb(const unsigned char *data, unsigned long size,
                                      unsigned char **pixels, int *width, int *height, unsigned long max_pixels,
                                      char *message, size_t message_capacity) {
    struct jpeg_decompress_struct cinfo;
    struct mge_jpeg_error err;
    unsigned char *volatile out = NULL;
    *pixels = NULL;
    cinfo.err = mge_jpeg_errors(&err);
    if (setjmp(err.escape)) {
        snprintf(message, message_capacity, "%s", err.message);
        jpeg_destroy_decompress(&cinfo);
        free(out);
        return -1;
    }
    mge_jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, size);
    jpeg_read_header(&cinfo, TRUE);
    if ((unsigned long long)cinfo.image_width * cinfo.image_height > max_pixels) {
        snprintf(message, message_capacity, "its header declares %ux%u pixels, more than the %lu this reader accepts",
                 (unsigned)cinfo.image_width, (unsigned)cinfo.image_height, max_pixels);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != 3) {
        snprintf(message, message_capacity, "decoded to %d components, expected 3 (RGB)", cinfo.output_components);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    size_t stride = (size_t)cinfo.output_width * 3;
    out = (unsigned char *)malloc(stride * cinfo.output_height);
    if (!out) {
        snprintf(message, message_capacity, "out of memory");
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out + stride * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    *width = (int)cinfo.output_width;
    *height = (int)cinfo.output_height;
    jpeg_destroy_decompress(&cinfo);
    *pixels = out;
    return 0;
}

/// Encodes interleaved 8-bit RGB (components 3) or grayscale (components 1) to a JPEG in memory.
/// Returns 0 and a malloc'ed buffer in *jpeg (the caller frees it), or -1 with a reason.
static inline int mge_jpeg_encode(const unsigned char *pixels, int width, int height, int components,
                                  int quality, unsigned char **jpeg, unsigned long *size,
                                  char *message, size_t message_capacity) {
    struct jpeg_compress_struct cinfo;
    struct mge_jpeg_error err;
    *jpeg = NULL;
    *size = 0;
    cinfo.err = mge_jpeg_errors(&err);
    if (setjmp(err.escape)) {
        snprintf(message, message_capacity, "%s", err.message);
        jpeg_destroy_compress(&cinfo);
        return -1;
    }
    mge_jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, jpeg, size);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = components;
    cinfo.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    size_t stride = (size_t)width * (size_t)components;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + stride * cinfo.next_scanline);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return 0;
}
