package imageproxy

import (
	"errors"
	"net/http"
	"time"
)

// Errors Transform and Inspect return, wrapped with detail; test with
// errors.Is. StatusCode maps them to HTTP.
var (
	// ErrSourceTooLarge: the original exceeds the byte, pixel, side or
	// aspect-ratio limits (checked on the header, before decoding).
	ErrSourceTooLarge = errors.New("source image too large")
	// ErrUnsupported: not JPEG, PNG, WebP or HEIF/AVIF (SVG, PDF, GIF,
	// TIFF… are refused before libvips sees them).
	ErrUnsupported = errors.New("unsupported image format")
	// ErrCorrupt: the original is truncated or does not decode.
	ErrCorrupt = errors.New("corrupt or truncated image")
	// ErrBusy: every transform slot is taken and the queue is full.
	ErrBusy = errors.New("image transforms busy")
	// ErrTimeout: the request's time ran out before the variant was ready.
	ErrTimeout = errors.New("image transform timed out")
	// ErrBadVariant: the variant asked for cannot be produced.
	ErrBadVariant = errors.New("invalid variant")
)

// RetryAfter is the Retry-After StatusCode suggests for ErrBusy and
// ErrTimeout.
const RetryAfter = 2 * time.Second

// StatusCode maps a Transform error to an HTTP status, and a Retry-After
// delay for the ones worth retrying (0 otherwise). The original is the
// edge's own upstream content, so its defects are 422/415, not 400.
func StatusCode(err error) (int, time.Duration) {
	switch {
	case err == nil:
		return http.StatusOK, 0
	case errors.Is(err, ErrBusy), errors.Is(err, ErrTimeout):
		return http.StatusServiceUnavailable, RetryAfter
	case errors.Is(err, ErrUnsupported):
		return http.StatusUnsupportedMediaType, 0
	case errors.Is(err, ErrSourceTooLarge), errors.Is(err, ErrCorrupt):
		return http.StatusUnprocessableEntity, 0
	case errors.Is(err, ErrBadVariant):
		return http.StatusBadRequest, 0
	}
	return http.StatusInternalServerError, 0
}
