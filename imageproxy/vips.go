package imageproxy

/*
#cgo pkg-config: vips
#include <stdlib.h>
#include <vips/vips.h>

enum { SPK_JPEG = 0, SPK_WEBP = 1, SPK_AVIF = 2, SPK_PNG = 3 };

// spk_strip returns a copy of in without any metadata: EXIF (GPS
// included), XMP, IPTC, ICC, comments. libvips 8.14's webpsave ignores its
// strip option, so the fields must be gone before any saver sees them.
static int spk_strip(VipsImage *in, VipsImage **out) {
	if (vips_copy(in, out, NULL))
		return -1;
	gchar **fields = vips_image_get_fields(*out);
	for (int i = 0; fields[i]; i++)
		vips_image_remove(*out, fields[i]);
	g_strfreev(fields);
	return 0;
}

static int spk_save(VipsImage *in, int format, int q, int effort, void **buf, size_t *len) {
	int rc = -1;
	VipsImage *flat = NULL;
	switch (format) {
	case SPK_JPEG:
		if (vips_image_hasalpha(in)) {
			VipsArrayDouble *bg = vips_array_double_newv(3, 255.0, 255.0, 255.0);
			rc = vips_flatten(in, &flat, "background", bg, NULL);
			vips_area_unref(VIPS_AREA(bg));
			if (rc)
				return rc;
			in = flat;
		}
		rc = vips_jpegsave_buffer(in, buf, len, "Q", q, "interlace", TRUE,
			"optimize_coding", TRUE, "strip", TRUE, NULL);
		break;
	case SPK_WEBP:
		rc = vips_webpsave_buffer(in, buf, len, "Q", q, "effort", effort, "strip", TRUE, NULL);
		break;
	case SPK_AVIF:
		rc = vips_heifsave_buffer(in, buf, len, "Q", q,
			"compression", VIPS_FOREIGN_HEIF_COMPRESSION_AV1, "effort", effort, "strip", TRUE, NULL);
		break;
	}
	if (flat)
		g_object_unref(flat);
	return rc;
}

// spk_thumbnail is libvips' thumbnail within width x height: shrink-on-load,
// never enlarged, auto-rotated, attention crop when crop is set, converted
// to sRGB from the embedded profile when srgb is set, failing on truncated
// input.
static int spk_thumbnail(void *src, size_t srclen, int width, int height, int crop, int srgb,
		VipsImage **thumb) {
	VipsInteresting interesting = crop ? VIPS_INTERESTING_ATTENTION : VIPS_INTERESTING_NONE;
	if (srgb)
		return vips_thumbnail_buffer(src, srclen, thumb, width,
			"height", height,
			"size", VIPS_SIZE_DOWN,
			"crop", interesting,
			"export_profile", "srgb",
			"fail_on", VIPS_FAIL_ON_TRUNCATED,
			NULL);
	return vips_thumbnail_buffer(src, srclen, thumb, width,
		"height", height,
		"size", VIPS_SIZE_DOWN,
		"crop", interesting,
		"fail_on", VIPS_FAIL_ON_TRUNCATED,
		NULL);
}

// spk_clean is spk_thumbnail, then spk_strip: the image to save, and its
// size.
static int spk_clean(void *src, size_t srclen, int width, int height, int crop, int srgb,
		VipsImage **clean, int *ow, int *oh) {
	VipsImage *thumb = NULL;
	int rc = spk_thumbnail(src, srclen, width, height, crop, srgb, &thumb);
	if (rc == 0)
		rc = spk_strip(thumb, clean);
	if (thumb)
		g_object_unref(thumb);
	if (rc == 0) {
		*ow = (*clean)->Xsize;
		*oh = (*clean)->Ysize;
	}
	return rc;
}

// spk_process is the whole transform in one call: libvips' thumbnail
// (shrink-on-load, rotation after shrinking, attention crop and, when srgb
// is set, conversion to sRGB from the embedded profile), metadata removal,
// save.
static int spk_process(void *src, size_t srclen, int width, int height, int crop, int srgb,
		int format, int q, int effort, void **buf, size_t *len, int *ow, int *oh) {
	VipsImage *clean = NULL;
	int rc = spk_clean(src, srclen, width, height, crop, srgb, &clean, ow, oh);
	if (rc == 0)
		rc = spk_save(clean, format, q, effort, buf, len);
	if (clean)
		g_object_unref(clean);
	vips_thread_shutdown();
	return rc;
}

// spk_normalize makes the stored original of an upload: libvips'
// thumbnail bounded by side (shrink-on-load, never enlarged, auto-rotated,
// converted to sRGB from the embedded profile when srgb is set), every
// metadata block removed, then baseline JPEG at quality q, or PNG when the
// image has an alpha channel (*png set).
static int spk_normalize(void *src, size_t srclen, int side, int srgb, int q,
		void **buf, size_t *len, int *ow, int *oh, int *png) {
	VipsImage *clean = NULL;
	int rc = spk_clean(src, srclen, side, side, 0, srgb, &clean, ow, oh);
	if (rc == 0) {
		*png = vips_image_hasalpha(clean);
		if (*png)
			rc = vips_pngsave_buffer(clean, buf, len, "compression", 6, "strip", TRUE, NULL);
		else
			rc = vips_jpegsave_buffer(clean, buf, len, "Q", q,
				"optimize_coding", TRUE, "strip", TRUE, NULL);
	}
	if (clean)
		g_object_unref(clean);
	vips_thread_shutdown();
	return rc;
}

static void spk_setup(void) {
	vips_cache_set_max(0);
	vips_cache_set_max_mem(0);
	vips_block_untrusted_set(TRUE);
}
*/
import "C"

import (
	"errors"
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

var setupOnce sync.Once

// setupVips applies the process-wide libvips settings measured in
// design/images.md: no operation cache (it grew RSS to GBs for no speed)
// and untrusted loaders (SVG, PDF, ImageMagick…) blocked. bimg's init has
// already started libvips with VIPS_CONCURRENCY=1 unless the environment
// says otherwise.
func setupVips() {
	setupOnce.Do(func() { C.spk_setup() })
}

// process runs the transform on the calling goroutine's OS thread.
func process(src []byte, width, height int, crop, srgb bool, f Format, q, effort int) (out []byte, w, h int, err error) {
	if len(src) == 0 {
		return nil, 0, 0, errors.New("empty input")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var buf unsafe.Pointer
	var n C.size_t
	var ow, oh C.int
	c, s := C.int(0), C.int(0)
	if crop {
		c = 1
	}
	if srgb {
		s = 1
	}
	rc := C.spk_process(unsafe.Pointer(&src[0]), C.size_t(len(src)), C.int(width), C.int(height), c, s,
		C.int(f), C.int(q), C.int(effort), &buf, &n, &ow, &oh)
	runtime.KeepAlive(src)
	if rc != 0 {
		return nil, 0, 0, vipsError()
	}
	defer C.g_free(C.gpointer(buf))
	return C.GoBytes(buf, C.int(n)), int(ow), int(oh), nil
}

// normalize runs spk_normalize on the calling goroutine's OS thread.
func normalize(src []byte, side int, srgb bool, q int) (out []byte, f Format, w, h int, err error) {
	if len(src) == 0 {
		return nil, 0, 0, 0, errors.New("empty input")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var buf unsafe.Pointer
	var n C.size_t
	var ow, oh, png C.int
	s := C.int(0)
	if srgb {
		s = 1
	}
	rc := C.spk_normalize(unsafe.Pointer(&src[0]), C.size_t(len(src)), C.int(side), s, C.int(q),
		&buf, &n, &ow, &oh, &png)
	runtime.KeepAlive(src)
	if rc != 0 {
		return nil, 0, 0, 0, vipsError()
	}
	defer C.g_free(C.gpointer(buf))
	f = FormatJPEG
	if png != 0 {
		f = FormatPNG
	}
	return C.GoBytes(buf, C.int(n)), f, int(ow), int(oh), nil
}

// vipsError takes libvips' error buffer (one per process) as an error.
func vipsError() error {
	msg := strings.TrimSpace(C.GoString(C.vips_error_buffer()))
	C.vips_error_clear()
	if msg == "" {
		msg = "libvips failed without a message"
	}
	return errors.New(strings.ReplaceAll(msg, "\n", "; "))
}
