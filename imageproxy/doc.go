// Package imageproxy makes the variants of profile photos that the edge
// serves and the normalised originals the origin stores: it turns request
// hints into a network class and a Variant (width, quality, format), and
// transforms images with libvips — header-checked limits before any
// decoding, bounded concurrency with a bounded queue, auto-orientation,
// conversion to sRGB, removal of every metadata block (GPS included, in
// every output format), progressive JPEG, attention crop for square
// thumbnails.
//
// # libvips, called directly
//
// The transforms are this package's own cgo calls into libvips (vips.go):
// one C function per job runs libvips' thumbnail path,
// vips_thumbnail_buffer (shrink-on-load, so a 16 MP JPEG is decoded at a
// fraction of its size; rotation after shrinking; attention crop;
// conversion to sRGB from the embedded profile with export_profile; a
// truncated file fails instead of being filled in), then removes every
// metadata field and saves. They do not go through bimg's Process, which
// design/images.md measured against this path: bimg decodes an
// EXIF-rotated photo at full size, rotates, re-encodes and decodes again
// (150–200 ms against 33–110 ms), and cannot convert from an embedded
// colour profile, so Display P3 photos lose saturation.
//
// bimg (github.com/h2non/bimg) remains for two small things: its package
// init starts libvips (vips_init, with VIPS_CONCURRENCY=1 unless the
// environment sets it), and Inspect reads the declared size and EXIF
// orientation through bimg.Metadata, which opens the header without
// decoding pixels.
//
// # Hints
//
// Browsers send Chromium's client hints once the edge asks for them
// (Accept-CH). Native apps send nothing unless told to; the Spark apps
// should send, on every photo request:
//
//	Save-Data: on               when the user turned on data saving
//	ECT: 3g                     slow-2g, 2g, 3g or 4g, from the OS's connectivity API
//	Downlink: 1.5               estimated bandwidth, Mbit/s
//	RTT: 300                    estimated round trip, ms
//	Sec-CH-DPR: 3               the screen's device pixel ratio
//	Sec-CH-Width: 1080          the photo's rendered width, physical pixels
//	Accept: image/avif,image/webp,image/jpeg
//
// With no network hint at all the edge falls back to the round-trip time it
// measured on the connection (TCP_INFO), then to the plan's default class.
// Hints are quantized into a Class before anything else uses them: a cache
// keys on Variant.String(), never on raw RTT or Downlink values. Accept
// weights are read as RFC 9110 q-values (internal/contract): a format with
// q=0 or a malformed q is not accepted.
//
// # Process-wide libvips state
//
// bimg starts libvips in its init (VIPS_CONCURRENCY=1 unless set). New
// additionally turns libvips' operation cache off and blocks its untrusted
// loaders (SVG, PDF, ImageMagick…), once per process.
package imageproxy
