// Package vipsref is the reference the imageproxy tests and benchmarks
// measure against: libvips' own thumbnail path (vips_thumbnail_buffer, then
// save) called directly, and a metadata reader that reports which metadata
// fields an encoded image carries. Test support only.
package vipsref

/*
#cgo pkg-config: vips
#include <stdlib.h>
#include <vips/vips.h>

static int ref_thumbnail_save(void *src, size_t srclen, int width, int height, int crop,
		int format, int q, int effort, void **buf, size_t *len) {
	VipsImage *t = NULL, *flat = NULL;
	int rc = vips_thumbnail_buffer(src, srclen, &t, width, "height", height,
		"size", VIPS_SIZE_DOWN,
		"crop", crop ? VIPS_INTERESTING_ATTENTION : VIPS_INTERESTING_NONE,
		NULL);
	if (rc == 0) {
		switch (format) {
		case 0:
			if (vips_image_hasalpha(t)) {
				VipsArrayDouble *bg = vips_array_double_newv(3, 255.0, 255.0, 255.0);
				rc = vips_flatten(t, &flat, "background", bg, NULL);
				vips_area_unref(VIPS_AREA(bg));
			}
			if (rc == 0)
				rc = vips_jpegsave_buffer(flat ? flat : t, buf, len, "Q", q, "interlace", TRUE,
					"optimize_coding", TRUE, "strip", TRUE, NULL);
			break;
		case 1:
			rc = vips_webpsave_buffer(t, buf, len, "Q", q, "effort", effort, "strip", TRUE, NULL);
			break;
		case 2:
			rc = vips_heifsave_buffer(t, buf, len, "Q", q,
				"compression", VIPS_FOREIGN_HEIF_COMPRESSION_AV1, "effort", effort, "strip", TRUE, NULL);
			break;
		default:
			rc = -1;
		}
	}
	if (flat)
		g_object_unref(flat);
	if (t)
		g_object_unref(t);
	vips_thread_shutdown();
	return rc;
}

static int ref_to_profile(void *src, size_t srclen, const char *profile, void **buf, size_t *len) {
	VipsImage *im = vips_image_new_from_buffer(src, srclen, "", NULL);
	VipsImage *out = NULL;
	int rc = -1;
	if (im && vips_icc_transform(im, &out, profile, "input_profile", "srgb", "embedded", TRUE, NULL) == 0)
		rc = vips_jpegsave_buffer(out, buf, len, "Q", 95, NULL);
	if (out)
		g_object_unref(out);
	if (im)
		g_object_unref(im);
	vips_thread_shutdown();
	return rc;
}

static char *ref_fields(void *src, size_t srclen, int *w, int *h) {
	VipsImage *im = vips_image_new_from_buffer(src, srclen, "", NULL);
	if (!im)
		return NULL;
	*w = im->Xsize;
	*h = im->Ysize;
	gchar **f = vips_image_get_fields(im);
	gchar *s = g_strjoinv("\n", f);
	g_strfreev(f);
	g_object_unref(im);
	vips_thread_shutdown();
	return s;
}
*/
import "C"

import (
	"errors"
	"runtime"
	"strings"
	"unsafe"

	"github.com/h2non/bimg" // starts libvips (vips_init) in its init
)

// VipsVersion is the libvips version the reference runs on.
const VipsVersion = bimg.VipsVersion

// ThumbnailSave is libvips' own path: vips_thumbnail_buffer(width, height,
// size=down, crop) and the saver with strip, format 0 JPEG (progressive,
// optimized, flattened on white), 1 WebP, 2 AVIF (AV1 at effort).
func ThumbnailSave(src []byte, width, height int, crop bool, format, q, effort int) ([]byte, error) {
	if len(src) == 0 {
		return nil, errors.New("vipsref: empty input")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c := C.int(0)
	if crop {
		c = 1
	}
	var buf unsafe.Pointer
	var n C.size_t
	rc := C.ref_thumbnail_save(unsafe.Pointer(&src[0]), C.size_t(len(src)), C.int(width), C.int(height), c,
		C.int(format), C.int(q), C.int(effort), &buf, &n)
	runtime.KeepAlive(src)
	if rc != 0 {
		return nil, lastError()
	}
	defer C.g_free(C.gpointer(buf))
	return C.GoBytes(buf, C.int(n)), nil
}

// ToProfile converts an sRGB image to the named profile (libvips' built-in
// "p3", or a file) and returns it as a JPEG that embeds the profile: a
// stand-in for a Display P3 phone photo.
func ToProfile(src []byte, profile string) ([]byte, error) {
	if len(src) == 0 {
		return nil, errors.New("vipsref: empty input")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cp := C.CString(profile)
	defer C.free(unsafe.Pointer(cp))
	var buf unsafe.Pointer
	var n C.size_t
	rc := C.ref_to_profile(unsafe.Pointer(&src[0]), C.size_t(len(src)), cp, &buf, &n)
	runtime.KeepAlive(src)
	if rc != 0 {
		return nil, lastError()
	}
	defer C.g_free(C.gpointer(buf))
	return C.GoBytes(buf, C.int(n)), nil
}

// Fields loads an encoded image's header and returns its size and the
// names of its metadata fields (exif-data, exif-ifd3-GPSLatitude,
// xmp-data, icc-profile-data…), as libvips reads them.
func Fields(src []byte) (fields []string, width, height int, err error) {
	if len(src) == 0 {
		return nil, 0, 0, errors.New("vipsref: empty input")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var w, h C.int
	s := C.ref_fields(unsafe.Pointer(&src[0]), C.size_t(len(src)), &w, &h)
	runtime.KeepAlive(src)
	if s == nil {
		return nil, 0, 0, lastError()
	}
	defer C.g_free(C.gpointer(s))
	return strings.Split(C.GoString(s), "\n"), int(w), int(h), nil
}

func lastError() error {
	msg := strings.TrimSpace(C.GoString(C.vips_error_buffer()))
	C.vips_error_clear()
	if msg == "" {
		msg = "libvips failed without a message"
	}
	return errors.New("vipsref: " + strings.ReplaceAll(msg, "\n", "; "))
}
