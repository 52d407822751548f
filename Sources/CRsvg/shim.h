#pragma once
#include <librsvg/rsvg.h>
#include <cairo.h>
#include <string.h>
#include <stdio.h>

/// Renders an SVG document to a PNG file of `width` x `height` pixels (the document is scaled
/// to fit). Returns 0 on success; otherwise writes a reason into `error` (NUL-terminated).
static inline int mge_render_svg_to_png(const unsigned char *svg, size_t length, int width, int height,
                                        const char *path, char *error, size_t error_capacity) {
    GError *gerror = NULL;
    RsvgHandle *handle = rsvg_handle_new_from_data(svg, length, &gerror);
    if (handle == NULL) {
        snprintf(error, error_capacity, "librsvg cannot read the SVG: %s", gerror ? gerror->message : "unknown error");
        if (gerror) g_error_free(gerror);
        return 1;
    }
    cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height);
    if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS) {
        snprintf(error, error_capacity, "cannot allocate a %dx%d image", width, height);
        cairo_surface_destroy(surface);
        g_object_unref(handle);
        return 1;
    }
    cairo_t *cr = cairo_create(surface);
    RsvgRectangle viewport = { 0, 0, (double)width, (double)height };
    gboolean ok = rsvg_handle_render_document(handle, cr, &viewport, &gerror);
    int status = 0;
    if (!ok) {
        snprintf(error, error_capacity, "librsvg cannot render the SVG: %s", gerror ? gerror->message : "unknown error");
        if (gerror) g_error_free(gerror);
        status = 1;
    } else {
        cairo_status_t written = cairo_surface_write_to_png(surface, path);
        if (written != CAIRO_STATUS_SUCCESS) {
            snprintf(error, error_capacity, "cannot write the PNG: %s", cairo_status_to_string(written));
            status = 1;
        }
    }
    cairo_destroy(cr);
    cairo_surface_destroy(surface);
    g_object_unref(handle);
    return status;
}
