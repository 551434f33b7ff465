// Package imageproxy makes the variants of profile photos that the edge
// serves: it turns request hints into a network class and a Variant (width,
// quality, format), and transforms originals with libvips through bimg —
// header-checked limits before any decoding, bounded concurrency with a
// bounded queue, auto-orientation, removal of every metadata block (GPS
// included, in every output format), progressive JPEG, attention crop for
// square thumbnails.
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
// keys on Variant.String(), never on raw RTT or Downlink values.
//
// # Process-wide libvips state
//
// bimg starts libvips in its init (VIPS_CONCURRENCY=1 unless set). New
// additionally turns libvips' operation cache off and blocks its untrusted
// loaders (SVG, PDF, ImageMagick…), once per process.
package imageproxy
